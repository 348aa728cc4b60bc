"""Integration: the whole lab on this machine (podman nodes, sushy-tools BMCs, provisioner, Ceph, OVN).

One small lab (1 rack x 2 nodes) is brought up in temporary state/inventory directories for the module,
exercised through its real interfaces (SSH, Ansible, Redfish over TLS + basic auth via `sushy`), and
removed by the last test, which checks nothing is left. The lab's podman names are global, so the module
is skipped when another lab already exists on the machine (it never touches someone else's lab).
Power changes in the fake Redfish driver take 1-11 s: tests poll with generous deadlines, no timings
are asserted (wall times are reported by bench / docs).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sushy
from sushy import auth

from rollout.lab import bmc_client, lifecycle, nodes, podman, process, status
from rollout.lab.state import LabPaths, load_state, read_reinstalls
from rollout.lab.topology import BMC_PORT, NETWORK_NAME, PROVISIONER_PORT, LabSpec

pytestmark = [pytest.mark.integration, pytest.mark.lab]
SPEC = LabSpec(1, 2)
REPO = Path(__file__).resolve().parents[2]


class Lab:
    def __init__(self, root: Path) -> None:
        self.paths = LabPaths(root / "state" / "lab")
        self.inventory = root / "inv" / "lab"
        self.up_seconds: list[float] = []

    def up(self) -> dict[str, Any]:
        t0 = time.monotonic()
        state = lifecycle.up(SPEC, self.paths, self.inventory)
        self.up_seconds.append(time.monotonic() - t0)
        return state

    def creds(self, name: str) -> dict[str, str]:
        return bmc_client.credentials(self.paths, self.inventory)[name]

    def system(self, name: str, password: str | None = None) -> Any:
        node = next(n for n in SPEC.nodes() if n.name == name)
        c = self.creds(name)
        root = sushy.Sushy(
            f"https://127.0.0.1:{BMC_PORT}/redfish/v1",
            auth=auth.BasicAuth(c["username"], password or c["password"]),
            verify=str(self.paths.pki_dir / "ca.crt"),
        )
        return root.get_system(f"/redfish/v1/Systems/{node.system_uuid}")

    def ssh(self, ip: str, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "ssh",
                "-i",
                str(self.paths.ssh_key),
                "-o",
                f"UserKnownHostsFile={self.paths.known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                f"root@{ip}",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    if podman.exists("network", NETWORK_NAME) or podman.list_names("container"):
        pytest.skip("a rollout lab already exists on this machine (rollout lab down first)")
    lab = Lab(tmp_path_factory.mktemp("lab"))
    try:
        lab.up()
        yield lab
    finally:
        lifecycle.down(lab.paths)  # no-op when test_down already ran


N1, N2 = SPEC.nodes()


def test_up_brings_every_component_up(lab: Lab) -> None:
    doc = status.collect(lab.paths)
    by_name = {c["name"]: c for c in doc["components"]}
    assert set(by_name) == {
        NETWORK_NAME,
        "rollout-lab-ceph",
        "rollout-lab-ovn",
        "bmc-emulator",
        "provisioner",
        N1.name,
        N2.name,
    }
    unhealthy = [c for c in doc["components"] if not c["healthy"]]
    assert unhealthy == []
    assert by_name[N1.name]["detail"]["bmc_power"] == "On"
    assert by_name["rollout-lab-ceph"]["detail"]["status"].startswith("HEALTH_")


def test_up_again_is_idempotent(lab: Lab) -> None:
    ids = {n.container: podman.inspect("container", n.container)["Id"] for n in SPEC.nodes()}
    vault = (lab.inventory / "group_vars" / "all" / "vault.yml").read_bytes()
    pids = {name: process.read_pid(Path(p)) for name, p in load_state(lab.paths)["processes"].items()}
    lab.up()
    assert {n.container: podman.inspect("container", n.container)["Id"] for n in SPEC.nodes()} == ids
    assert (lab.inventory / "group_vars" / "all" / "vault.yml").read_bytes() == vault
    assert {name: process.read_pid(Path(p)) for name, p in load_state(lab.paths)["processes"].items()} == pids


def test_nodes_answer_ssh_and_ansible_over_the_bridge(lab: Lab) -> None:
    for node in SPEC.nodes():
        res = lab.ssh(node.ip, "hostname; ip -4 -o addr show eth0")
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[0] == node.name
        assert f"{node.ip}/24" in res.stdout
    region = (lab.inventory / "region.yml").read_text()
    assert "workload: null" in region
    pw = lab.paths.vault_password_file
    res = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "ansible"),
            "-i",
            str(lab.inventory / "hosts.yml"),
            "hyperconverged",
            "-m",
            "ping",
            "--vault-password-file",
            str(pw),
            "-o",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=lab.inventory,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == 2


def test_redfish_needs_tls_trust_and_credentials(lab: Lab) -> None:
    system = lab.system(N1.name)
    assert system.power_state == sushy.PowerState.ON
    with pytest.raises(sushy.exceptions.AccessError):
        lab.system(N1.name, password="wrong-password")
    with pytest.raises(requests.exceptions.SSLError):  # not trusted without the lab CA
        requests.get(f"https://127.0.0.1:{BMC_PORT}/redfish/v1", timeout=5)


def test_power_off_then_on_from_disk_keeps_the_installed_os(lab: Lab) -> None:
    before = nodes.host_key_fingerprint(N2)
    system = lab.system(N2.name)
    system.reset_system(sushy.ResetType.FORCE_OFF)
    wait_for("container stopped", lambda: not podman.container_running(N2.container))
    system.set_system_boot_options(sushy.BootSource.HDD, enabled=sushy.BootSourceOverrideEnabled.ONCE)
    system.reset_system(sushy.ResetType.ON)
    wait_for("ssh back", lambda: nodes.ssh_port_open(N2.ip))
    assert nodes.host_key_fingerprint(N2) == before
    assert read_reinstalls(lab.paths, N2.name) == []
    system.refresh()
    assert system.power_state == sushy.PowerState.ON


def test_pxe_boot_reinstalls_once_keeping_data_and_address(lab: Lab) -> None:
    marker = f"osd-data-{time.time()}"
    res = lab.ssh(N1.ip, f"echo {marker} > /var/lib/rollout-data/marker; touch /root/on-os-disk")
    assert res.returncode == 0, res.stderr
    before = nodes.host_key_fingerprint(N1)
    system = lab.system(N1.name)
    system.set_system_boot_options(sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.ONCE)
    system.reset_system(sushy.ResetType.FORCE_RESTART)
    [record] = wait_for("re-install record", lambda: read_reinstalls(lab.paths, N1.name))
    assert record["boot_source"] == "Pxe"
    assert record["host_key_fingerprint"] != before
    assert record["ip"] == N1.ip
    # New host key, same address: strict host key checking works because the lab recorded the new key.
    res = wait_for(
        "ssh after re-install",
        lambda: (
            (r := lab.ssh(N1.ip, "cat /var/lib/rollout-data/marker; ls /root/on-os-disk 2>&1; hostname")).returncode
            == 0
            and r
        ),
    )
    out = res.stdout.splitlines()
    assert out[0] == marker  # data disk survived
    assert "No such file" in out[1]  # OS disk is fresh
    assert out[2] == N1.name
    assert nodes.host_key_fingerprint(N1) == record["host_key_fingerprint"]
    # "Once": the override is back to the disk, so the next power cycle boots the installed OS.
    system.refresh()
    assert system.boot.target == sushy.BootSource.HDD
    system.reset_system(sushy.ResetType.FORCE_RESTART)
    wait_for(
        "power cycle done",
        lambda: (system.refresh() or system.power_state == sushy.PowerState.ON) and nodes.ssh_port_open(N1.ip),
        timeout=60,
    )
    time.sleep(1)
    assert len(read_reinstalls(lab.paths, N1.name)) == 1


def test_virtual_media_boot_reinstalls_from_cd(lab: Lab) -> None:
    system = lab.system(N2.name)
    cd = next(
        vm
        for vm in _virtual_media(system)
        if "CD" in [str(t).upper() for t in vm.media_types] or "cd" in vm.identity.lower()
    )
    cd.insert_media(f"http://127.0.0.1:{PROVISIONER_PORT}/images/lab-installer.iso")
    system.set_system_boot_options(sushy.BootSource.CD, enabled=sushy.BootSourceOverrideEnabled.ONCE)
    system.reset_system(sushy.ResetType.FORCE_RESTART)
    [record] = wait_for("cd re-install record", lambda: read_reinstalls(lab.paths, N2.name))
    assert record["boot_source"] == "Cd"
    wait_for("ssh after cd install", lambda: nodes.ssh_port_open(N2.ip))


def _virtual_media(system: Any) -> list[Any]:
    return [system.virtual_media.get_member(i) for i in system.virtual_media.members_identities]


def test_status_json_reports_reinstalls(lab: Lab) -> None:
    doc = wait_for("healthy status", lambda: (d := status.collect(lab.paths))["healthy"] and d, timeout=30)
    json.dumps(doc)  # serialisable: this is `lab status -o json`
    nodes_ = {c["name"]: c for c in doc["components"] if c["kind"] == "node"}
    assert nodes_[N1.name]["detail"]["reinstalls"] == 1
    assert nodes_[N2.name]["detail"]["reinstalls"] == 1


OSD_PLAYBOOK = """\
- name: Storage part of site.yml (node_base + ceph_osd), as `rollout apply` would run it on the lab
  hosts: hyperconverged
  gather_facts: true
  vars_files:
    - {node_params}
  roles:
    - role: node_base
    - role: ceph_osd
"""


def _osds_of(host: str) -> dict[int, bool]:
    tree = json.loads(podman.exec_("rollout-lab-ceph", "ceph", "osd", "tree", "-f", "json").stdout)
    by_id = {n["id"]: n for n in tree["nodes"]}
    hosts = [n for n in tree["nodes"] if n["type"] == "host" and n["name"] == host]
    return {i: by_id[i].get("status") == "up" for h in hosts for i in h.get("children", [])}


def _osd_count() -> int:
    return len(json.loads(podman.exec_("rollout-lab-ceph", "ceph", "osd", "ls", "-f", "json").stdout))


@pytest.mark.slow
def test_pxe_reinstall_reactivates_the_same_osds(lab: Lab, tmp_path: Path) -> None:
    if not (REPO / "roles" / "ceph_osd").is_dir() or not (REPO / "playbooks" / "group_vars").is_dir():
        pytest.skip("roles/ceph_osd or playbooks/group_vars not present yet")
    playbook = tmp_path / "storage.yml"
    playbook.write_text(OSD_PLAYBOOK.format(node_params=REPO / "playbooks/group_vars/all/node_params.yml"))
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_HOST_KEY_CHECKING": "True"}

    def converge() -> None:
        cmd = [
            str(REPO / ".venv/bin/ansible-playbook"),
            "-i",
            str(lab.inventory / "hosts.yml"),
            "--vault-password-file",
            str(lab.paths.vault_password_file),
            str(playbook),
            "--limit",
            N1.name,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=env)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]

    converge()
    before = wait_for("OSDs up", lambda: (o := _osds_of(N1.name)) and all(o.values()) and o, timeout=120)
    total = _osd_count()
    reinstalls = len(read_reinstalls(lab.paths, N1.name))
    system = lab.system(N1.name)
    system.set_system_boot_options(sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.ONCE)
    system.reset_system(sushy.ResetType.FORCE_RESTART)
    wait_for("re-install", lambda: len(read_reinstalls(lab.paths, N1.name)) == reinstalls + 1)
    wait_for("ssh", lambda: nodes.ssh_port_open(N1.ip))
    assert lab.ssh(N1.ip, "test ! -e /etc/ceph/ceph.conf").returncode == 0  # really a fresh OS
    converge()
    after = wait_for("OSDs up again", lambda: (o := _osds_of(N1.name)) and all(o.values()) and o, timeout=120)
    assert sorted(after) == sorted(before)  # the same OSD ids, re-activated
    assert _osd_count() == total  # and no new OSD was created


def test_down_leaves_nothing_behind(lab: Lab) -> None:
    state = load_state(lab.paths)
    pids = [process.read_pid(Path(p)) for p in state["processes"].values()]
    assert all(pids)
    lifecycle.down(lab.paths)
    for kind in ("container", "volume", "network"):
        for name in state["created"][kind]:
            assert not podman.exists(kind, name), name
    assert podman.list_names("container") == [] and podman.list_names("volume") == []
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not lab.paths.root.exists()
    assert not (lab.inventory / "host_vars").exists()
    assert not (lab.inventory / "group_vars").exists()
    print(f"lab up wall times (s): {[round(s, 1) for s in lab.up_seconds]}")
