"""Generate big synthetic regions (inventories/<name>/ trees shaped like `example`) for scale benchmarks.

`generate_region(dir, racks, nodes_per_rack)` writes `dir/<name>/` with hosts.yml, region.yml,
group_vars/all/{main,vault}.yml (vault encrypted with the TEST-FIXTURE password file it writes beside
it) and one host_vars file per node, and returns that region directory (load it with
`rollout.inventory.load_region(path.parent, path.name)`).

Invariants:
- Deterministic: the same arguments give the same files (the vault ciphertext aside: Ansible Vault salts
  each encryption; its plaintext is deterministic). No randomness, no clock.
- Addresses are imaginary and never contacted: rack r gets mgmt 10.64+.x/24 and tunnel 10.128+.x/24
  subnets (one /24 per rack, so at most 240 nodes per rack), BMCs are under 10.192+.
- Every 10th node is a T4 host and every 10th (offset 9) an M10 host, the rest hc_std; every node has
  four OSD devices (by-id wwn) and an exact root-device hint (serialNumber).
"""

from __future__ import annotations

import argparse
import ipaddress
import uuid
from pathlib import Path
from typing import Any

import yaml

PASSWORD = "rollout-generated-TEST-FIXTURE-not-a-secret"
_NS = uuid.UUID("5b1c2c4e-8d7f-4b55-9b0a-6a1d1f6e2a10")


def _ip(base: str, rack: int, host: int) -> str:
    return str(ipaddress.ip_address(base) + (rack << 8) + host)


def _mac(kind: int, rack: int, index: int) -> str:
    return f"0c:c4:{kind:02x}:{(rack >> 8) & 0xFF:02x}:{rack & 0xFF:02x}:{index:02x}"


def _dump(path: Path, data: Any, header: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False, default_flow_style=False, width=4096)
    path.write_text(f"{header}---\n{text}", encoding="utf-8")


def _node_class(index: int) -> str:
    return {8: "hc_t4", 9: "hc_m10"}.get(index % 10, "hc_std")


def generate_region(dir: Path, racks: int, nodes_per_rack: int) -> Path:
    """Write a racks x nodes_per_rack region under `dir` and return its directory."""
    if not 1 <= nodes_per_rack <= 240 or not 1 <= racks <= 4096:
        raise ValueError("1 <= nodes_per_rack <= 240 and 1 <= racks <= 4096")
    name = f"gen{racks}x{nodes_per_rack}"
    root = dir / name
    root.mkdir(parents=True, exist_ok=True)
    classes: dict[str, dict[str, None]] = {"hc_std": {}, "hc_t4": {}, "hc_m10": {}}
    rack_groups: dict[str, Any] = {}
    creds: dict[str, dict[str, str]] = {}
    for r in range(1, racks + 1):
        members: dict[str, None] = {}
        for i in range(1, nodes_per_rack + 1):
            host = f"g-r{r}-n{i:03d}"
            cls = _node_class(i)
            classes[cls][host] = None
            members[host] = None
            mgmt, tunnel = _ip("10.64.0.0", r, 10 + i), _ip("10.128.0.0", r, 10 + i)
            bmc_ip = _ip("10.192.0.0", r, 10 + i)
            hv: dict[str, Any] = {
                "ansible_host": mgmt,
                "rack": f"r{r}",
                "boot_mac": _mac(0x7A, r, i),
                "bmc": {
                    "driver": "redfish-virtualmedia",
                    "address": f"redfish-virtualmedia+https://{bmc_ip}/redfish/v1/Systems/1",
                    "credentials": host,
                },
                "root_device_hints": {"serialNumber": f"S6GEN{r:04d}{i:03d}0"},
                "ceph_osd_devices": [
                    {"path": f"/dev/disk/by-id/wwn-0x5000c500{r:04x}{i:03x}{d}"} for d in range(1, 5)
                ],
                "ovn": {
                    "encap_ip": tunnel,
                    "bridge_mappings": ["physnet1:br-provider"],
                    "gateway": i <= 2,
                    "system_id": str(uuid.uuid5(_NS, host)),
                },
                "interfaces": [
                    {
                        "name": "eno1",
                        "mac": _mac(0x7A, r, i),
                        "role": "mgmt",
                        "addresses": [f"{mgmt}/24"],
                        "gateway": _ip("10.64.0.0", r, 1),
                        "mtu": 1500,
                    },
                    {
                        "name": "eno2",
                        "mac": _mac(0x7B, r, i),
                        "role": "tunnel",
                        "addresses": [f"{tunnel}/24"],
                        "mtu": 9000,
                    },
                ],
            }
            if cls != "hc_std":
                hv["gpu"] = {
                    "model": "T4" if cls == "hc_t4" else "M10",
                    "count": 2 if cls == "hc_t4" else 1,
                    "vgpu_profile": "nvidia-230",
                    "mode": "host",
                }
            _dump(root / "host_vars" / f"{host}.yml", hv, f"# {host}: rack r{r}, class {cls} (generated)\n")
            creds[host] = {"username": "rollout", "password": f"bmc-GEN-TEST-FIXTURE-{host}"}
        rack_groups[f"rack_r{r}"] = {"hosts": members}
    _dump(
        root / "hosts.yml",
        {
            "all": {
                "children": {
                    "hyperconverged": {"children": {c: {"hosts": h} for c, h in classes.items() if h}},
                    "racks": {"children": rack_groups},
                }
            }
        },
        f"# Generated region {name}: {racks} racks x {nodes_per_rack}\n",
    )
    (root / "vault-password.TEST-FIXTURE.txt").write_text(PASSWORD + "\n", encoding="utf-8")
    n = racks * nodes_per_rack
    _dump(
        root / "region.yml",
        {
            "schema": "rollout.region/v1",
            "name": name,
            "description": f"Generated {racks}x{nodes_per_rack} region",
            "method": "ansible",
            "failure_domain": "rack",
            "vault_password_file": "vault-password.TEST-FIXTURE.txt",
            "policy": {
                "max_unavailable": max(1, n // 100),
                "max_failure_domains_down": 1,
                "max_failures": 5,
                "provisioning_concurrency": 10,
                "gpu_capacity_floor": {"T4": max(0, sum(1 for _ in classes["hc_t4"]) // 2)},
            },
            "clusters": {
                "management": {"kubeconfig": "~/.kube/gen-mgmt.yaml", "namespace": f"region-{name}"},
                "workload": {
                    "name": f"{name}-infra",
                    "kubeconfig": "~/.kube/gen-infra.yaml",
                    "control_plane_endpoint": "https://10.64.0.10:6443",
                    "kubernetes_version": "v1.31.4",
                },
            },
            "image": {
                "url": "http://images.example.invalid/debian-12-hc.qcow2",
                "checksum": "http://images.example.invalid/debian-12-hc.qcow2.sha256sum",
                "checksum_type": "sha256",
                "format": "qcow2",
            },
            "bundle": {"base_url": "http://images.example.invalid/rollout-bundles"},
            "bmc_defaults": {"boot_mode": "UEFI", "disable_certificate_verification": False},
            "ceph": {"admin_host": "g-r1-n001"},
            "node_classes": {
                "hc_std": {"description": "Hyperconverged node without GPU"},
                "hc_t4": {"description": "Hyperconverged node with T4 (vGPU host)", "gpu_model": "T4"},
                "hc_m10": {"description": "Hyperconverged node with M10 (vGPU host)", "gpu_model": "M10"},
            },
        },
    )
    _dump(
        root / "group_vars" / "all" / "main.yml",
        {
            "ansible_user": "root",
            "kubernetes_version": "1.31.4",
            "kubernetes_apt_minor": "v1.31",
            "kube_control_plane_endpoint": "10.64.0.10:6443",
            "kubeadm_ca_cert_hashes": ["sha256:" + "ab" * 32],
            "ovn_remote": "tcp:10.64.0.21:6642",
            "ovn_encap_type": "geneve",
            "ceph_fsid": str(uuid.uuid5(_NS, name)),
            "ceph_mon_host": "10.64.0.31,10.64.0.32,10.64.0.33",
            "nvidia_grid_release": "16.9",
            "bmc_credentials": "{{ vault_bmc_credentials }}",
            "grid_client_token": "{{ vault_grid_client_token }}",
            "kubeadm_join_token": "{{ vault_kubeadm_join_token }}",
            "ceph_bootstrap_osd_key": "{{ vault_ceph_bootstrap_osd_key }}",
        },
    )
    plain = yaml.dump(
        {
            "vault_bmc_credentials": creds,
            "vault_ceph_bootstrap_osd_key": "AQBGENTESTFIXTUREbootstraposdkeyAAAAAAAAA==",
            "vault_grid_client_token": "GEN-TEST-FIXTURE-grid-client-token",
            "vault_kubeadm_join_token": "abcdef.0123456789abcdef",
        },
        Dumper=yaml.CSafeDumper,
        sort_keys=True,
    )
    (root / "group_vars" / "all" / "vault.yml").write_text(_encrypt(f"---\n{plain}"), encoding="utf-8")
    return root


def _encrypt(plaintext: str) -> str:
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([("default", VaultSecret(PASSWORD.encode()))])
    return vault.encrypt(plaintext).decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="inventory root to write into")
    parser.add_argument("--racks", type=int, default=50)
    parser.add_argument("--nodes-per-rack", type=int, default=200)
    args = parser.parse_args()
    print(generate_region(args.dir, args.racks, args.nodes_per_rack))


if __name__ == "__main__":
    main()
