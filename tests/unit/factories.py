"""Small builders of model objects for unit tests (no Ansible), and a reachable copy of `example`."""

from __future__ import annotations

import shutil
from pathlib import Path

from rollout.model import BmcSpec, GpuSpec, Method, Node, NodeClass, OsdDevice, OvnSpec, Policy, Region


def make_node(rack: int, idx: int, gpu: str | None = None) -> Node:
    name = f"t-r{rack}-n{idx}"
    return Node(
        name=name,
        address=f"192.0.2.{rack * 16 + idx}",
        failure_domain=f"r{rack}",
        node_class="hc_t4" if gpu == "T4" else "hc_std",
        bmc=BmcSpec(driver="redfish", address=f"redfish+https://127.0.0.1:8443/redfish/v1/Systems/{name}",
                    credentials=name),
        boot_mac=f"52:54:00:00:{rack:02x}:{idx:02x}",
        root_device_hints=(("serialNumber", f"OS-{name}"),),
        osd_devices=(OsdDevice(path=f"/dev/disk/by-id/wwn-0x5000{rack:02d}{idx:02d}"),),
        gpu=GpuSpec(model=gpu, count=1, vgpu_profile="nvidia-230", mode="host") if gpu else None,
        ovn=OvnSpec(encap_ip=f"198.51.100.{rack * 16 + idx}", system_id=f"sys-{name}"),
    )


def make_region(racks: int = 3, per_rack: int = 2, *, method: Method = Method.ANSIBLE,
                policy: Policy | None = None) -> Region:
    nodes = tuple(make_node(r, i) for r in range(1, racks + 1) for i in range(1, per_rack + 1))
    return Region(
        name="test",
        method=method,
        failure_domain_level="rack",
        policy=policy or Policy(max_unavailable=2, max_failures=2, provisioning_concurrency=2),
        node_classes=(NodeClass("hc_std"), NodeClass("hc_t4", gpu_model="T4")),
        nodes=tuple(sorted(nodes, key=lambda n: n.name)),
    )


def reachable_example(inventory_root: Path) -> Path:
    """A copy of the shipped `example` region under `inventory_root` without `offline: true`, for tests of
    what happens *before* anything would connect (the copy's addresses are still imaginary)."""
    shutil.copytree(Path(__file__).resolve().parents[2] / "inventories" / "example", inventory_root / "example")
    region_yml = inventory_root / "example" / "region.yml"
    region_yml.write_text("".join(line for line in region_yml.read_text().splitlines(keepends=True)
                                  if not line.startswith("offline:")))
    return inventory_root
