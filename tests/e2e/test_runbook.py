"""docs/oncall.md, page by page, on the lab: each test makes the page happen, runs the runbook's own
commands (the `rollout` CLI, `ansible-vault edit`, `ovn-sbctl`, `ceph`) and checks the output the
runbook quotes, then leaves the lab as it found it (every node done, no quarantine, no noout).

Stand-ins, as everywhere in the lab (docs/lab.md): containers are the servers, sushy-tools is the BMC,
the "control plane" that knows bootstrap tokens and the NVIDIA License System are files the stand-in
kubeadm / nvidia-gridd read from the node's hardware dir (`.rollout/lab/hardware/<node>/`). The lab has
no kube-apiserver, so page 4 (stuck drain) is reproduced against the Kubernetes API emulator in
tests/integration/test_kube_backend.py (a PodDisruptionBudget's 429 answers), not here. Page 2 is
`test_reimage_one_node_keeps_osds_and_chassis` in test_lab_rollout.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import ROOT, Lab, rollout

pytestmark = [pytest.mark.integration, pytest.mark.lab]

INVENTORY = ROOT / "inventories" / "lab"
VAULT = INVENTORY / "group_vars" / "all" / "vault.yml"
VAULT_PASSWORD = ROOT / ".rollout" / "lab" / "vault-password.txt"
HARDWARE = ROOT / ".rollout" / "lab" / "hardware"
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "images" / "containers.conf")}
INJECTED: list[str] = []  # secrets the tests put into the vault: the last test greps for them


# -- what the operator types besides rollout ---------------------------------------------------------
def vault_edit(path: str, value: object) -> None:
    """`ansible-vault edit` with an EDITOR that sets one dotted key, as the runbook tells the operator."""
    editor = f"{shlex.quote(sys.executable)} {shlex.quote(str(ROOT / 'tests' / 'support' / 'yaml_set.py'))} " \
             f"{shlex.quote(path)} {shlex.quote(json.dumps(value))}"
    subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "edit", "--vault-password-file",
                    str(VAULT_PASSWORD), str(VAULT)], env={**ENV, "EDITOR": editor}, check=True, timeout=60,
                   capture_output=True)


def vault_get(path: str) -> object:
    out = subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "view", "--vault-password-file",
                          str(VAULT_PASSWORD), str(VAULT)], env=ENV, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    value: object = yaml.safe_load(out)
    for key in path.split("."):
        value = value[key]  # type: ignore[index]
    return value


def in_container(container: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", "exec", container, *argv], env=ENV, capture_output=True, text=True,
                          timeout=120, check=check)


@contextmanager
def host_vars_extra(node: str, extra: dict[str, object]) -> Iterator[None]:
    """Add variables to the node's generated host_vars file for the test; restored afterwards."""
    path = INVENTORY / "host_vars" / f"{node}.yml"
    original = path.read_text()
    data = yaml.safe_load(original)
    data.update(extra)
    path.write_text(original.split("---", 1)[0] + "---\n" + yaml.safe_dump(data, sort_keys=False))
    try:
        yield
    finally:
        path.write_text(original)


def said(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def noout(lab: Lab) -> list[str]:
    flags = lab.ceph("osd", "dump").get("crush_node_flags") or {}  # type: ignore[union-attr]
    return sorted(k for k, v in flags.items() if "noout" in v)


def wait_ceph_clean(lab: Lab, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = lab.ceph("pg", "stat")
        by_state = stat.get("pg_summary", stat).get("num_pg_by_state", [])  # type: ignore[union-attr]
        total = sum(s["num"] for s in by_state)
        clean = sum(s["num"] for s in by_state if s["name"] == "active+clean")
        if total and total == clean:
            return
        time.sleep(3)
    raise AssertionError(f"Ceph not active+clean after {timeout} s: {lab.ceph('pg', 'stat')}")


def assert_region_settled(lab: Lab) -> None:
    status = json.loads(rollout("status", "--region", "lab", "-o", "json", check=True).stdout)
    stuck = [n["node"] for n in status["nodes"] if n["unfinished"] or n["quarantined"]]
    assert stuck == [], status
    assert noout(lab) == []


@pytest.fixture(scope="module")
def region(lab: Lab) -> Lab:
    """The lab with every node rolled out (a no-op when an earlier test did it)."""
    rollout("apply", "--region", "lab", "--yes", check=True)
    return lab


# -- page 1 -----------------------------------------------------------------------------------------
def test_page1_node_down(region: Lab) -> None:
    node = region.nodes[0]
    subprocess.run(["podman", "stop", "-t", "5", f"rollout-lab-{node}"], env=ENV, check=True, timeout=120,
                   capture_output=True)
    try:
        status = rollout("status", "--region", "lab")
        assert status.returncode == 0, said(status)
        explain = rollout("explain", node, "--region", "lab")
        assert explain.returncode == 0, said(explain)
        text = said(explain)
        assert "observed method: unknown" in text, text
        assert f"Next: rollout apply --region lab --limit {node}" in text, text
    finally:
        subprocess.run(["podman", "start", f"rollout-lab-{node}"], env=ENV, check=True, timeout=120,
                       capture_output=True)
    # The hardware was fine: the node comes back by itself with its OSDs, and the plan leaves it alone.
    wait_ceph_clean(region)
    again = rollout("apply", "--region", "lab", "--limit", node, "--yes")
    assert again.returncode == 0, said(again)
    assert_region_settled(region)


# -- page 3 -----------------------------------------------------------------------------------------
def test_page3_wrong_bmc_credentials_then_bmc_down_then_retry(region: Lab) -> None:
    node = region.nodes[0]
    before = region.reinstalls().get(node, 0)
    password = vault_get(f"vault_bmc_credentials.{node}.password")
    wrong_password = f"not-the-bmc-password-{int(time.time())}"
    INJECTED.append(wrong_password)
    vault_edit(f"vault_bmc_credentials.{node}.password", wrong_password)
    try:
        wrong = rollout("reimage", node, "--region", "lab", "--yes", "--reason", "runbook page 3")
    finally:
        vault_edit(f"vault_bmc_credentials.{node}.password", password)
    assert wrong.returncode == 4, said(wrong)
    assert (f"Error: {node}: precheck failed: BMC https://127.0.0.1:18443 of {node} rejected the credentials "
            "(HTTP 401) during power state") in wrong.stderr, wrong.stderr
    assert wrong_password not in said(wrong) and str(password) not in said(wrong)
    assert f"rollout apply --region lab --retry {node}" in wrong.stderr
    assert region.reinstalls().get(node, 0) == before and noout(region) == []  # nothing was changed

    from rollout.lab import bmc
    from rollout.lab.state import LabPaths

    assert bmc.stop(LabPaths.default())
    try:
        down = rollout("reimage", node, "--region", "lab", "--yes", "--reason", "runbook page 3")
    finally:
        racks = os.environ.get("ROLLOUT_E2E_RACKS", "3")
        per = os.environ.get("ROLLOUT_E2E_NODES_PER_RACK", "1")
        rollout("lab", "up", "--racks", racks, "--nodes-per-rack", per, check=True)  # the BMC is back
    assert down.returncode == 4, said(down)
    assert (f"Error: {node}: precheck failed: cannot connect to BMC https://127.0.0.1:18443 of {node} "
            "during power state (gave up after 4 attempts)") in down.stderr, down.stderr
    assert region.reinstalls().get(node, 0) == before and noout(region) == []

    # The runbook's fix: retry the node; the re-image it still owes is carried out, exactly once.
    retry = rollout("apply", "--region", "lab", "--retry", node, "--yes")
    assert retry.returncode == 0, said(retry)
    assert "retry of the reimage" in retry.stderr, retry.stderr
    assert region.reinstalls().get(node, 0) == before + 1
    assert_region_settled(region)


# -- page 5 -----------------------------------------------------------------------------------------
def test_page5_ceph_not_ok_to_stop(region: Lab) -> None:
    node = region.nodes[1]
    pools = [p["pool_name"] for p in region.ceph("osd", "pool", "ls", "detail")  # type: ignore[union-attr]
             if p["pool_name"] != ".mgr"]
    pool = pools[0]
    size = region.ceph("osd", "pool", "get", pool, "size")["size"]  # type: ignore[index]
    min_size = region.ceph("osd", "pool", "get", pool, "min_size")["min_size"]  # type: ignore[index]
    before = region.reinstalls().get(node, 0)
    in_container("rollout-lab-ceph", "ceph", "osd", "pool", "set", pool, "min_size", str(size))
    try:
        refused = rollout("reimage", node, "--region", "lab", "--yes", "--reason", "runbook page 5")
        detail = in_container("rollout-lab-ceph", "sh", "-c",
                              "ceph osd pool ls detail | grep -E 'size|min_size'").stdout
    finally:
        in_container("rollout-lab-ceph", "ceph", "osd", "pool", "set", pool, "min_size", str(min_size))
    assert refused.returncode == 3, said(refused)
    assert f"Error: Ceph says the OSDs of {node} cannot stop now: " in refused.stderr, refused.stderr
    assert "NOT ok to stop" in refused.stderr and "PGs would become inactive" in refused.stderr
    assert f"pool {pool} (size {size}, min_size {size}) cannot lose a single copy" in refused.stderr
    assert "Nothing was changed" in refused.stderr and f"rollout reimage {node} --region lab" in refused.stderr
    assert f"min_size {size}" in detail  # what the runbook tells on-call to look at shows the cause
    assert region.reinstalls().get(node, 0) == before and noout(region) == []
    assert_region_settled(region)


# -- page 6 -----------------------------------------------------------------------------------------
def test_page6_ovn_duplicate_chassis(region: Lab) -> None:
    node = region.nodes[-1]
    own = [c for c in region.ovn_chassis() if c["hostname"] == node or str(c["hostname"]).startswith(node + ".")]
    assert len(own) == 1, region.ovn_chassis()
    hostname, stale = str(own[0]["hostname"]), f"stale-{node}"
    # What a re-install outside rollout leaves: a second chassis (new system-id) with the same hostname.
    in_container("rollout-lab-ovn", "ovn-sbctl", "chassis-add", stale, "geneve", "10.231.0.250")
    in_container("rollout-lab-ovn", "ovn-sbctl", "set", "Chassis", stale, f"hostname={hostname}")
    try:
        found = rollout("apply", "--region", "lab", "--limit", node, "--force-configure", "--yes")
        assert found.returncode == 4, said(found)
        # The ovn_chassis role refuses at configure; verify.yml's `ovn no duplicate chassis` catches it too
        # on a node that is only verified (the CAPI path).
        assert "task `Refuse to run next to a stale chassis` failed" in found.stderr, found.stderr
        assert f"has chassis {stale} with hostname {hostname} besides this node's system-id" in found.stderr
        listing = in_container("rollout-lab-ovn", "ovn-sbctl", "--columns=name,hostname,encaps", "list",
                               "Chassis").stdout
        assert len(re.findall(rf'^hostname\s*:\s*"?{re.escape(hostname)}"?$', listing, re.M)) == 2, listing
        assert stale in listing
        in_container("rollout-lab-ovn", "ovn-sbctl", "chassis-del", stale)
    finally:
        in_container("rollout-lab-ovn", "ovn-sbctl", "--if-exists", "chassis-del", stale, check=False)
    fixed = rollout("apply", "--region", "lab", "--retry", node, "--yes")
    assert fixed.returncode == 0, said(fixed)
    assert "retry of the configure" in fixed.stderr, fixed.stderr
    assert [c for c in region.ovn_chassis() if c["hostname"] == hostname] == own
    assert_region_settled(region)


# -- page 7 -----------------------------------------------------------------------------------------
def test_page7_gpu_unlicensed(region: Lab) -> None:
    """The node plays a GRID guest (a vGPU in gpus.json, `gpu.mode: guest`); the simulated NLS accepts
    only a token the vault does not have yet, as after a token rotation."""
    node = region.nodes[-1]
    hw = HARDWARE / node
    assert hw.is_dir(), hw
    gpus, nls = hw / "gpus.json", hw / "nls-valid-tokens"
    saved = gpus.read_text()
    token = vault_get("vault_grid_client_token")
    rotated = f"runbook-rotated-nls-token-{int(time.time())}"
    INJECTED.append(rotated)
    gpus.write_text(json.dumps({"gpus": [{"model": "T4", "bus_id": "00000000:02:00.0",
                                          "profile": "GRID T4-16C"}]}) + "\n")
    nls.write_text(rotated + "\n")
    guest = {"gpu": {"model": "T4", "count": 1, "vgpu_profile": "nvidia-230", "mode": "guest"},
             "nvidia_grid_license_retries": 2, "nvidia_grid_license_delay": 2}
    try:
        with host_vars_extra(node, guest):
            failed = rollout("apply", "--region", "lab", "--limit", node, "--yes")
            assert failed.returncode == 4, said(failed)
            assert f"nvidia_grid: {node} is NOT LICENSED: nvidia-smi -q reports License Status" in failed.stderr, \
                failed.stderr
            assert rotated not in said(failed) and str(token) not in said(failed)
            vault_edit("vault_grid_client_token", rotated)
            fixed = rollout("apply", "--region", "lab", "--retry", node, "--yes")
            assert fixed.returncode == 0, said(fixed)
            smi = in_container(f"rollout-lab-{node}", "nvidia-smi", "-q").stdout
            assert "License Status" in smi and "Unlicensed" not in smi
    finally:
        vault_edit("vault_grid_client_token", token)
        gpus.write_text(saved)
        nls.unlink(missing_ok=True)
    # Back to the node's real role: the inventory changed back, so the plan re-configures it.
    back = rollout("apply", "--region", "lab", "--limit", node, "--yes")
    assert back.returncode == 0, said(back)
    assert_region_settled(region)


# -- page 8 -----------------------------------------------------------------------------------------
def test_page8_join_token_expired(region: Lab) -> None:
    """The node joins a "control plane" (the stand-in kubeadm's token file) whose copy of the vault's
    token has expired; the runbook's fix is a new token in the control plane and in the vault."""
    node = region.nodes[1]
    # The node starts (and is left) outside the pretend cluster: `kubeadm reset` undoes an earlier join.
    in_container(f"rollout-lab-{node}", "kubeadm", "reset", "--force")
    tokens = HARDWARE / node / "kubeadm-tokens"
    old = str(vault_get("vault_kubeadm_join_token"))
    now = datetime.now(UTC)
    tokens.write_text(f"{old} {(now - timedelta(hours=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
    new = "rb8new.runbookpage8tokn"  # `kubeadm token create` format: [a-z0-9]{6}.[a-z0-9]{16}
    INJECTED.append(new)
    try:
        with host_vars_extra(node, {"kubelet_join": True}):
            failed = rollout("apply", "--region", "lab", "--limit", node, "--yes")
            assert failed.returncode == 4, said(failed)
            assert f"kubelet: kubeadm join on {node} was refused: the bootstrap token" in failed.stderr, failed.stderr
            assert "is EXPIRED or unknown to the cluster" in failed.stderr, failed.stderr
            assert old not in said(failed)
            # `kubeadm token create --ttl 2h` on a control-plane node: the control plane now knows `new`.
            tokens.write_text(f"{new} {(now + timedelta(hours=2)).strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
            vault_edit("vault_kubeadm_join_token", new)
            fixed = rollout("apply", "--region", "lab", "--retry", node, "--yes")
            assert fixed.returncode == 0, said(fixed)
            assert new not in said(fixed)
    finally:
        vault_edit("vault_kubeadm_join_token", old)
        tokens.unlink(missing_ok=True)
        in_container(f"rollout-lab-{node}", "kubeadm", "reset", "--force", check=False)
    back = rollout("apply", "--region", "lab", "--limit", node, "--yes")
    assert back.returncode == 0, said(back)
    assert_region_settled(region)


def test_secrets_the_runbook_put_in_the_vault_never_reach_journal_or_artifacts(region: Lab) -> None:
    """Runs last in this module: the wrong BMC password, the rotated NLS token and the new join token."""
    assert INJECTED, "run the whole module: the page tests collect what to look for"
    assert region.secret_leaks(INJECTED) == []
