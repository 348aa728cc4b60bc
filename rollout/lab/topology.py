"""Pure description of a lab of a given size: names, racks, classes, addresses, identities.

Invariants (everything here is a pure function of (racks, nodes_per_rack)):
- node `rR-nNN` lives in rack `rR`, has IP 10.231.0.(10*R + N) on the lab bridge, so up to 9 racks x
  9 nodes fit in the /24 and addresses never move when the lab grows (a re-install keeps its IP);
- service containers use the low addresses: .1 gateway (host), .2 Ceph mon+mgr, .3 OVN central;
- identities (Redfish System UUID, OVN system-id, MACs) are derived from the node name, so a
  re-install or a `lab down; lab up` gives the same identity, like real hardware would.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass

SUBNET = ipaddress.ip_network("10.231.0.0/24")
GATEWAY = "10.231.0.1"
CEPH_IP = "10.231.0.2"
OVN_IP = "10.231.0.3"
NETWORK_NAME = "rollout-lab"
CEPH_CONTAINER = "rollout-lab-ceph"
OVN_CONTAINER = "rollout-lab-ovn"
DATA_MOUNT = "/var/lib/rollout-data"
# Fixed loopback ports (region.yml names the provisioner's installer URL): BMC emulator, provisioner.
BMC_PORT = 18443
PROVISIONER_PORT = 18444
MAX_RACKS = 9
MAX_NODES_PER_RACK = 9
# A fixed namespace: UUIDs stay stable across machines and lab re-creations.
_NS = uuid.UUID("5b0f3a9e-2c1d-4e8f-9a7b-6c5d4e3f2a10")


@dataclass(frozen=True)
class LabNode:
    name: str
    rack: str
    index: int
    ip: str
    mac: str
    tunnel_mac: str
    system_uuid: str        # the Redfish System id
    ovn_system_id: str      # kept across re-installs (a new one would be a duplicate chassis)
    node_class: str
    serial: str             # the "OS disk" serial, used as exact root device hint

    @property
    def container(self) -> str:
        return f"rollout-lab-{self.name}"

    @property
    def volume(self) -> str:
        return f"rollout-lab-{self.name}-data"


@dataclass(frozen=True)
class LabSpec:
    racks: int = 3
    nodes_per_rack: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.racks <= MAX_RACKS:
            raise ValueError(f"racks must be 1..{MAX_RACKS}, got {self.racks}")
        if not 1 <= self.nodes_per_rack <= MAX_NODES_PER_RACK:
            raise ValueError(f"nodes_per_rack must be 1..{MAX_NODES_PER_RACK}, got {self.nodes_per_rack}")

    @property
    def rack_names(self) -> list[str]:
        return [f"r{r}" for r in range(1, self.racks + 1)]

    def nodes(self) -> list[LabNode]:
        return [make_node(r, n, self.gpu_node_name()) for r in range(1, self.racks + 1)
                for n in range(1, self.nodes_per_rack + 1)]

    def gpu_node_name(self) -> str | None:
        """One T4 node (last node of the last rack) when the lab has >= 3 racks and >= 2 nodes each.

        Small labs stay GPU-free so that the GPU capacity floor never blocks their only node.
        """
        if self.racks >= 3 and self.nodes_per_rack >= 2:
            return node_name(self.racks, self.nodes_per_rack)
        return None


def node_name(rack: int, index: int) -> str:
    return f"r{rack}-n{index:02d}"


def make_node(rack: int, index: int, gpu_node: str | None = None) -> LabNode:
    name = node_name(rack, index)
    return LabNode(
        name=name,
        rack=f"r{rack}",
        index=index,
        ip=str(SUBNET.network_address + 10 * rack + index),
        # 52:54:00 is the locally administered QEMU/KVM prefix used by lab tooling everywhere.
        mac=f"52:54:00:31:{rack:02x}:{index:02x}",
        tunnel_mac=f"52:54:00:32:{rack:02x}:{index:02x}",
        system_uuid=str(uuid.uuid5(_NS, f"system/{name}")),
        ovn_system_id=str(uuid.uuid5(_NS, f"ovn/{name}")),
        node_class="hc_t4" if name == gpu_node else "hc_std",
        serial=f"LAB{rack:02d}{index:02d}OSDISK",
    )
