"""The desired state of a region: what `inventories/<region>/` says, as typed, frozen values.

Invariants (established by `rollout.inventory`, relied upon everywhere else):
- `Region.nodes` is sorted by name and names are unique.
- Every node's `node_class` is a key of `Region.node_classes`; every node has a non-empty `failure_domain`.
- OSD devices are stable `/dev/disk/by-id|by-path` names and none equals the root device hint's device.
- No field holds a secret value; `BmcSpec.credentials` is a key into the vault's `vault_bmc_credentials`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Method(StrEnum):
    """How a node is brought online and kept configured."""

    ANSIBLE = "ansible"
    CAPI = "capi"


@dataclass(frozen=True)
class BmcSpec:
    driver: str  # redfish | redfish-virtualmedia | ipmi
    address: str  # e.g. redfish-virtualmedia+https://10.0.0.5/redfish/v1/Systems/1
    credentials: str  # key into vault_bmc_credentials (never the secret itself)
    disable_certificate_verification: bool = False
    ca_file: str | None = None


@dataclass(frozen=True)
class OsdDevice:
    path: str  # /dev/disk/by-id/... or /dev/disk/by-path/...
    allow_zap: bool = False


@dataclass(frozen=True)
class GpuSpec:
    model: str  # T4 | M10
    count: int
    vgpu_profile: str
    mode: str  # host | guest


@dataclass(frozen=True)
class OvnSpec:
    encap_ip: str
    system_id: str
    bridge_mappings: tuple[str, ...] = ()
    gateway: bool = False


@dataclass(frozen=True)
class Interface:
    name: str
    mac: str
    role: str
    addresses: tuple[str, ...] = ()
    gateway: str | None = None
    mtu: int = 1500


@dataclass(frozen=True)
class Node:
    """One hyperconverged node as the inventory describes it."""

    name: str
    address: str
    failure_domain: str
    node_class: str
    bmc: BmcSpec
    boot_mac: str
    root_device_hints: tuple[tuple[str, str], ...]
    osd_devices: tuple[OsdDevice, ...] = ()
    gpu: GpuSpec | None = None
    ovn: OvnSpec | None = None
    interfaces: tuple[Interface, ...] = ()
    groups: tuple[str, ...] = ()
    method: Method | None = None  # per-node `rollout_method` (a half-migrated region); None = region's

    @property
    def gpu_model(self) -> str | None:
        return self.gpu.model if self.gpu else None

    @property
    def is_osd_host(self) -> bool:
        return bool(self.osd_devices)


@dataclass(frozen=True)
class NodeClass:
    name: str
    description: str = ""
    gpu_model: str | None = None


@dataclass(frozen=True)
class Timeouts:
    """Named timeouts in seconds; every wait in rollout uses one of these names."""

    drain: int = 900
    bmc: int = 120
    reprovision: int = 3600
    ssh: int = 1800
    configure: int = 3600
    join: int = 1200
    ceph_clean: int = 3600


@dataclass(frozen=True)
class Policy:
    """Safety budgets; the planner and scheduler refuse any step that would exceed one."""

    max_unavailable: int = 1
    max_failure_domains_down: int = 1
    max_failures: int = 1
    provisioning_concurrency: int = 1
    gpu_capacity_floor: tuple[tuple[str, int], ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)

    def gpu_floor(self, model: str) -> int:
        return dict(self.gpu_capacity_floor).get(model, 0)


@dataclass(frozen=True)
class ClusterSettings:
    """Management (CAPI/Metal3) and workload (the region's kubeadm cluster) settings; None = absent."""

    management_kubeconfig: str | None = None
    management_namespace: str = "metal3"
    workload_name: str | None = None
    workload_kubeconfig: str | None = None
    control_plane_endpoint: str | None = None
    kubernetes_version: str | None = None

    @property
    def has_management(self) -> bool:
        return self.management_kubeconfig is not None

    @property
    def has_workload(self) -> bool:
        return self.workload_name is not None


@dataclass(frozen=True)
class ImageSpec:
    url: str
    checksum: str
    checksum_type: str = "sha256"
    format: str = "qcow2"


@dataclass(frozen=True)
class Region:
    name: str
    method: Method
    failure_domain_level: str
    policy: Policy
    node_classes: tuple[NodeClass, ...]
    nodes: tuple[Node, ...]
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    image: ImageSpec | None = None
    bundle_base_url: str | None = None
    boot_mode: str = "UEFI"
    ceph_admin_host: str | None = None
    ceph_admin_container: str | None = None  # lab: `podman exec <container> ceph ...`
    description: str = ""
    inventory_dir: str = ""
    # On paper only (region.yml `offline: true`): nothing may connect to its addresses (rollout.app.reach).
    offline: bool = False

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def node_class(self, name: str) -> NodeClass:
        for c in self.node_classes:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def failure_domains(self) -> tuple[str, ...]:
        return tuple(sorted({n.failure_domain for n in self.nodes}))
