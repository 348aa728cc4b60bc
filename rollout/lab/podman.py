"""The one door to the podman CLI for the lab.

Invariants:
- every call runs with CONTAINERS_CONF pointing at the project's `images/containers.conf`
  (runc + explicit ulimits; crun fails on the CI machines, see that file);
- the lab never touches podman objects outside its `rollout-lab` name prefix: `assert_owned`
  is called by every mutating helper so a bug cannot remove someone else's container.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

PREFIX = "rollout-lab"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = REPO_ROOT / "images" / "containers.conf"


class PodmanError(RuntimeError):
    """A podman command failed; the message carries the command and its stderr."""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return e


def assert_owned(name: str) -> None:
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to touch podman object {name!r}: not named {PREFIX}*")


def run(*args: str, check: bool = True, input_bytes: bytes | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `podman ARGS`; raise PodmanError with stderr when `check` and rc != 0."""
    proc = subprocess.run(
        ["podman", *args], env=env(), input=input_bytes.decode("latin-1") if input_bytes else None,
        capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)} failed (rc {proc.returncode}): {proc.stderr.strip()}")
    return proc


def run_bytes(*args: str, data: bytes, timeout: float = 120) -> None:
    """Run `podman ARGS` feeding binary `data` on stdin (used for `podman cp -` tar streams)."""
    proc = subprocess.run(["podman", *args], env=env(), input=data, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)} failed (rc {proc.returncode}): {proc.stderr.decode()}")


def exists(kind: str, name: str) -> bool:
    """kind: container | volume | network | image."""
    return run(kind, "exists", name, check=False).returncode == 0


def inspect(kind: str, name: str) -> dict[str, Any] | None:
    proc = run(kind, "inspect", name, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout or "[]")
    return data[0] if data else None


def container_running(name: str) -> bool:
    info = inspect("container", name)
    return bool(info and info.get("State", {}).get("Running"))


def exec_(container: str, *cmd: str, check: bool = True,
          timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run("exec", container, *cmd, check=check, timeout=timeout)


def remove_container(name: str, stop_timeout: int = 5) -> bool:
    assert_owned(name)
    if not exists("container", name):
        return False
    run("rm", "-f", "-t", str(stop_timeout), name)
    return True


def remove_volume(name: str) -> bool:
    assert_owned(name)
    if not exists("volume", name):
        return False
    run("volume", "rm", "-f", name)
    return True


def remove_network(name: str) -> bool:
    assert_owned(name)
    if not exists("network", name):
        return False
    run("network", "rm", "-f", name)
    return True


def list_names(kind: str) -> list[str]:
    """Names of the lab's own objects of `kind` (container | volume | network)."""
    fmt = {"container": "{{.Names}}", "volume": "{{.Name}}", "network": "{{.Name}}"}[kind]
    args = ["ps", "-a"] if kind == "container" else [kind, "ls"]
    proc = run(*args, "--format", fmt, check=False)
    return sorted(n for n in proc.stdout.split() if n.startswith(PREFIX))
