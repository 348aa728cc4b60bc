"""Shared helper for the lab's service containers (Ceph mon+mgr, OVN central): systemd containers
with a fixed IP on the lab network and, optionally, a persistent volume.

Invariant: a service container is created only when missing; an existing one is started if stopped,
never re-created (its data, e.g. the Ceph mon store, must survive a warm `lab up`).
"""

from __future__ import annotations

import time

from rollout.lab import podman
from rollout.lab.topology import NETWORK_NAME


def ensure_container(name: str, hostname: str, ip: str, image: str, volumes: dict[str, str]) -> bool:
    """Create + start the container unless it exists (start it if stopped); True when created."""
    podman.assert_owned(name)
    if podman.exists("container", name):
        if not podman.container_running(name):
            podman.run("start", name)
        return False
    args = ["run", "-d", "--name", name, "--hostname", hostname, "--network", NETWORK_NAME, "--ip", ip,
            "--systemd=always", "--label", "io.rollout.lab=true"]
    for vol, mount in volumes.items():
        podman.assert_owned(vol)
        args += ["-v", f"{vol}:{mount}"]
    podman.run(*args, image, "/lib/systemd/systemd")
    return True


def wait_systemd(name: str, timeout: float = 60.0) -> None:
    """Wait until systemd inside `name` finished booting (running or degraded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = podman.exec_(name, "systemctl", "is-system-running", check=False, timeout=15).stdout.strip()
        if out in ("running", "degraded"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{name}: systemd not up after {timeout:.0f}s")
