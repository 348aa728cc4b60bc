"""Images the lab runs, built by the project's scripts in images/ (never by a second builder).

Invariant: each script is content-hash cached and prints the image reference on stdout; the lab
records that exact reference (not `:latest`) so a re-install uses the image the lab was made with.
"""

from __future__ import annotations

import subprocess

from rollout.lab import podman

IMAGES_DIR = podman.REPO_ROOT / "images"
NODE_SCRIPT = "build-node-image.sh"
CEPH_SCRIPT = "build-ceph-image.sh"
OVN_SCRIPT = "build-ovn-image.sh"
STANDIN_SCRIPT = "build-standin-repo.sh"


class ImageBuildError(RuntimeError):
    pass


def build(script: str, *args: str, timeout: float = 1800) -> str:
    """Run images/<script> (idempotent, cached) and return the last line it prints (image ref / path)."""
    path = IMAGES_DIR / script
    if not path.exists():
        raise ImageBuildError(f"{path} does not exist (built by another part of the project)")
    proc = subprocess.run([str(path), *args], env=podman.env(), capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ImageBuildError(f"{path} failed (rc {proc.returncode}):\n{tail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise ImageBuildError(f"{path} printed no image reference")
    return lines[-1].strip()


def node_image() -> str:
    return build(NODE_SCRIPT)


def ceph_image() -> str:
    return build(CEPH_SCRIPT)


def ovn_image() -> str:
    return build(OVN_SCRIPT)


def standin_repo_available() -> bool:
    return (IMAGES_DIR / STANDIN_SCRIPT).exists()
