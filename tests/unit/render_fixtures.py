"""Frozen model fixtures for the render tests: a small region with everything CAPI rendering needs."""

from __future__ import annotations

import dataclasses

from rollout.model import ClusterSettings, ImageSpec, Interface, Node, Region
from rollout.render.capi_objects import BundleRef
from tests.unit.factories import make_node, make_region

BUNDLE = BundleRef(
    "http://bundles.invalid/rollout-bundle-test-0123456789abcdef.tar.gz", "0123456789abcdef" * 4
)


def with_interfaces(node: Node, rack: int, idx: int) -> Node:
    return dataclasses.replace(
        node,
        interfaces=(
            Interface(
                "eno1", node.boot_mac, "mgmt", (f"192.0.{rack}.{10 + idx}/24",), f"192.0.{rack}.1", 1500
            ),
            Interface(
                "eno2",
                f"52:54:01:00:{rack:02x}:{idx:02x}",
                "tunnel",
                (f"198.51.{rack}.{10 + idx}/24",),
                None,
                9000,
            ),
        ),
    )


def capi_region(racks: int = 2, per_rack: int = 2, *, gpu_node: bool = True) -> Region:
    base = make_region(racks, per_rack)
    nodes = []
    for node in base.nodes:
        rack, idx = int(node.failure_domain[1:]), int(node.name.rsplit("n", 1)[1])
        nodes.append(with_interfaces(node, rack, idx))
    if gpu_node:
        extra = with_interfaces(make_node(1, 9, gpu="T4"), 1, 9)
        nodes.append(extra)
    return dataclasses.replace(
        base,
        nodes=tuple(sorted(nodes, key=lambda n: n.name)),
        clusters=ClusterSettings(
            management_kubeconfig="/nonexistent",
            management_namespace="region-test",
            workload_name="test-infra",
            control_plane_endpoint="https://192.0.2.10:6443",
            kubernetes_version="v1.31.4",
        ),
        image=ImageSpec(
            url="http://images.invalid/os.qcow2", checksum="http://images.invalid/os.qcow2.sha256sum"
        ),
        bundle_base_url="http://bundles.invalid",
    )


class FakeSecrets:
    """Vault stand-in: distinctive values the leak tests grep for."""

    def __init__(self, region: Region) -> None:
        self.values = {
            "vault_bmc_credentials": {
                n.bmc.credentials: {"username": "admin", "password": f"PW-LEAK-{n.name}"}
                for n in region.nodes
            },
            "vault_grid_client_token": "GRID-LEAK-TOKEN-123456",
            "vault_ceph_bootstrap_osd_key": "CEPH-LEAK-KEY-123456==",
        }

    def secret(self, name: str) -> object:
        return self.values[name]

    def leaks(self) -> list[str]:
        out = [v["password"] for v in self.values["vault_bmc_credentials"].values()]  # type: ignore[union-attr]
        return [
            *out,
            str(self.values["vault_grid_client_token"]),
            str(self.values["vault_ceph_bootstrap_osd_key"]),
        ]
