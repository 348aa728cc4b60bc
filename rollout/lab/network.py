"""The lab's podman bridge network `rollout-lab` (10.231.0.0/24, gateway = the host at .1).

Invariant: an existing network named `rollout-lab` is only reused when its subnet is the lab's;
anything else is an error (never silently adopt or delete a network someone else made).
"""

from __future__ import annotations

from typing import Any

from rollout.lab import podman
from rollout.lab.topology import GATEWAY, NETWORK_NAME, SUBNET


def subnets(info: dict[str, Any]) -> list[str]:
    return [s.get("subnet", "") for s in info.get("subnets", [])]


def ensure() -> bool:
    """Create the network unless it exists; True when created."""
    info = podman.inspect("network", NETWORK_NAME)
    if info is not None:
        if str(SUBNET) not in subnets(info):
            raise RuntimeError(f"podman network {NETWORK_NAME} exists with subnets {subnets(info)}, "
                               f"expected {SUBNET}: remove it or run `rollout lab down`")
        return False
    podman.run("network", "create", "--driver", "bridge", "--subnet", str(SUBNET), "--gateway", GATEWAY,
               "--label", "io.rollout.lab=true", NETWORK_NAME)
    return True


def remove() -> bool:
    return podman.remove_network(NETWORK_NAME)
