"""Unit tests: the generated lab inventory (hosts.yml, host_vars, group_vars, vault, BMC config)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import bcrypt
import pytest
import yaml
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader

from rollout.lab import bmc, inventory, secrets
from rollout.lab.pki import tls_files
from rollout.lab.state import DEFAULT_STATE_DIR
from rollout.lab.topology import LabSpec

REPO = Path(__file__).resolve().parents[2]
CEPH = {"fsid": "0b7c3d1e-0000-4000-8000-000000000001", "mon_host": "10.231.0.2",
        "bootstrap_osd_key": "AQBsecretBootstrapKeyXYZ=="}


def test_committed_hosts_and_region_match_the_renderer() -> None:
    inv = REPO / "inventories" / "lab"
    assert (inv / "hosts.yml").read_text() == inventory.render_hosts(LabSpec())
    expected_region = inventory.render_region(inv.resolve(), DEFAULT_STATE_DIR / "vault-password.txt")
    assert (inv / "region.yml").read_text() == expected_region
    region = yaml.safe_load((inv / "region.yml").read_text())
    assert region["clusters"]["workload"] is None
    assert region["ceph"]["admin_container"] == "rollout-lab-ceph"


def _write(tmp_path: Path, spec: LabSpec) -> Path:
    inv = tmp_path / "inv"
    root = tmp_path / "state"
    inventory.write(inv, spec, bmc_port=18443, ca_file=root / "pki" / "ca.crt", paths_root=root,
                    vault_password_file=root / "vault-password.txt", ceph=CEPH,
                    ovn_remote="tcp:10.231.0.3:6642")
    return inv


def test_ansible_sees_every_node_with_rack_class_and_address(tmp_path: Path) -> None:
    spec = LabSpec(3, 2)
    inv = _write(tmp_path, spec)
    mgr = InventoryManager(loader=DataLoader(), sources=[str(inv / "hosts.yml")])
    assert sorted(h.name for h in mgr.get_hosts()) == sorted(n.name for n in spec.nodes())
    for node in spec.nodes():
        host = mgr.get_host(node.name)
        groups = {g.name for g in host.get_groups()}
        assert {f"rack_{node.rack}", node.node_class, "hyperconverged", "racks"} <= groups
        hv = yaml.safe_load((inv / "host_vars" / f"{node.name}.yml").read_text())
        assert hv["ansible_host"] == node.ip
        assert hv["rack"] == node.rack
        assert hv["bmc"]["address"] == f"redfish+https://127.0.0.1:18443/redfish/v1/Systems/{node.system_uuid}"
        assert hv["ovn"]["system_id"] == node.ovn_system_id
        assert ("gpu" in hv) == (node.node_class == "hc_t4")


def test_rendered_files_hold_no_secret(tmp_path: Path) -> None:
    inv = _write(tmp_path, LabSpec(1, 2))
    text = "".join(p.read_text() for p in inv.rglob("*.yml"))
    assert CEPH["bootstrap_osd_key"] not in text
    assert "password:" not in text.replace("vault_password_file:", "")
    gv = yaml.safe_load((inv / "group_vars" / "all" / "main.yml").read_text())
    assert gv["ceph_bootstrap_osd_key"] == "{{ vault_ceph_bootstrap_osd_key }}"
    assert gv["ceph_fsid"] == CEPH["fsid"] and gv["ovn_remote"] == "tcp:10.231.0.3:6642"


def test_shrinking_removes_host_vars_of_gone_nodes(tmp_path: Path) -> None:
    _write(tmp_path, LabSpec(2, 2))
    inv = _write(tmp_path, LabSpec(1, 1))
    assert sorted(p.stem for p in (inv / "host_vars").glob("*.yml")) == ["r1-n01"]


def test_vault_round_trip_and_generation_keeps_existing(tmp_path: Path) -> None:
    pw = secrets.ensure_vault_password(tmp_path / "pw")
    assert (tmp_path / "pw").stat().st_mode & 0o777 == 0o600
    data = secrets.generate_missing({}, ["r1-n01"], "KEY1")
    vault = tmp_path / "vault.yml"
    secrets.write_vault(vault, pw, data)
    assert vault.read_text().startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert data["vault_bmc_credentials"]["r1-n01"]["password"] not in vault.read_text()
    back = secrets.read_vault(vault, pw)
    assert back == data
    grown = secrets.generate_missing(back, ["r1-n01", "r1-n02"], "KEY2")
    assert grown["vault_bmc_credentials"]["r1-n01"] == data["vault_bmc_credentials"]["r1-n01"]
    assert set(grown["vault_bmc_credentials"]) == {"r1-n01", "r1-n02"}
    assert grown["vault_ceph_bootstrap_osd_key"] == "KEY2"
    assert grown["vault_grid_client_token"] == data["vault_grid_client_token"]
    # A well-formed bootstrap token (kubelet_join stays false in the lab), kept across runs.
    assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", grown["vault_kubeadm_join_token"])
    assert grown["vault_kubeadm_join_token"] == data["vault_kubeadm_join_token"]
    with pytest.raises(Exception, match=r"(?i)decrypt"):
        secrets.read_vault(vault, b"wrong")


def test_htpasswd_is_bcrypt_and_reused_when_still_valid() -> None:
    creds = {"a": {"username": "bmc-a", "password": "s3cret"}}
    first = secrets.htpasswd(creds)
    user, h = first.strip().split(":", 1)
    assert user == "bmc-a" and bcrypt.checkpw(b"s3cret", h.encode())
    assert secrets.htpasswd(creds, first) == first
    changed = secrets.htpasswd({"a": {"username": "bmc-a", "password": "other"}}, first)
    assert changed != first


def test_emulator_config_is_valid_python_with_fake_driver(tmp_path: Path) -> None:
    spec = LabSpec(1, 2)
    text = bmc.render_config(port=18443, notify_port=18444, nodes=spec.nodes(), power_on={"r1-n01": True},
                             tls=tls_files(tmp_path), auth_file=tmp_path / "htpasswd",
                             state_dir=tmp_path / "s")
    conf: dict = {}
    for node in ast.parse(text).body:
        assert isinstance(node, ast.Assign)
        conf[node.targets[0].id] = ast.literal_eval(node.value)  # type: ignore[attr-defined]
    assert conf["SUSHY_EMULATOR_FAKE_DRIVER"] is True
    assert conf["SUSHY_EMULATOR_LISTEN_IP"] == "127.0.0.1"
    assert conf["EXTERNAL_NOTIFICATION_URL"] == "http://127.0.0.1:18444/notify"
    systems = {s["name"]: s for s in conf["SUSHY_EMULATOR_FAKE_SYSTEMS"]}
    assert systems["r1-n01"]["power_state"] == "On" and systems["r1-n02"]["power_state"] == "Off"
    assert all(s["external_notifier"] for s in systems.values())
