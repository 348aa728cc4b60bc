"""The ansible-runner wrapper against real systemd containers (localhost/rollout-node:latest) reached
over real SSH on a podman network created for the test (`rb-net-*`), with a vaulted group var.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from rollout.backends.ansible import AnsibleEvent, AnsibleRunner, AnsibleSettings, forget_host_keys
from rollout.errors import ConfigError
from tests.support.podman_nodes import PodmanNodes, podman

pytestmark = pytest.mark.integration

SECRET = "rb-extravar-S3CRET-5c1f0e"
VAULT_SECRET = "rb-vaulted-T0KEN-9a7d21"
VAULT_PASSWORD = "rb-vault-pass-not-a-secret-of-anything"

OK_PLAY = """
- name: Configure
  hosts: all
  gather_facts: false
  tasks:
    - name: rb ping
      ansible.builtin.ping:
    - name: rb write the secret
      ansible.builtin.copy:
        content: "{{ rb_secret }}"
        dest: /root/rb-secret
        mode: "0600"
      no_log: true
    - name: rb use the vaulted value
      ansible.builtin.copy:
        content: "{{ vault_rb_token }}"
        dest: /root/rb-vaulted
        mode: "0600"
      no_log: true
    - name: rb hostname
      ansible.builtin.command: hostname
      changed_when: false
"""

FAIL_PLAY = """
- name: Fails on one node
  hosts: all
  gather_facts: false
  tasks:
    - name: rb before
      ansible.builtin.ping:
    - name: rb fail on n2
      ansible.builtin.fail:
        msg: "boom on {{ inventory_hostname }}"
      when: inventory_hostname == 'rb-n2'
    - name: rb after
      ansible.builtin.ping:
"""

PING_PLAY = """
- name: Ping
  hosts: all
  gather_facts: false
  tasks:
    - name: rb ping
      ansible.builtin.ping:
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("rb-ansible")
    with PodmanNodes(work) as nodes:
        nodes.start("rb-n1")
        nodes.start("rb-n2")
        inv = work / "inventory"
        (inv / "group_vars" / "all").mkdir(parents=True)
        (inv / "hosts.yml").write_text(yaml.safe_dump(nodes.inventory()))
        vault_pw = work / "vault-password.txt"
        vault_pw.write_text(VAULT_PASSWORD + "\n")
        vault_file = inv / "group_vars" / "all" / "vault.yml"
        vault_file.write_text(yaml.safe_dump({"vault_rb_token": VAULT_SECRET}))
        subprocess.run(
            [str(Path(__file__).resolve().parents[2] / ".venv/bin/ansible-vault"), "encrypt",
             "--vault-password-file", str(vault_pw), str(vault_file)],
            check=True, capture_output=True,
        )  # fmt: skip
        project = work / "playbooks"
        project.mkdir()
        (project / "ok.yml").write_text(OK_PLAY)
        (project / "fail.yml").write_text(FAIL_PLAY)
        (project / "ping.yml").write_text(PING_PLAY)
        yield {"nodes": nodes, "inventory": inv, "project": project, "vault_pw": vault_pw, "work": work}


@pytest.fixture
def runner(lab, tmp_path):
    events: list[AnsibleEvent] = []
    settings = AnsibleSettings(
        inventory=lab["inventory"],
        artifacts_dir=tmp_path / "artifacts",
        known_hosts=lab["work"] / "state" / "known_hosts",
        project_dir=lab["project"],
        roles_path=(lab["project"],),
        vault_password_file=lab["vault_pw"],
    )
    r = AnsibleRunner(settings, secrets=[VAULT_SECRET], on_event=events.append)
    r.events = events  # type: ignore[attr-defined]
    return r


def all_text_under(path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in path.rglob("*") if p.is_file())


def secret_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("rollout-secret-*")}


def test_success_stats_events_and_no_secret_in_artifacts(lab, runner):
    before = secret_dirs()
    res = runner.run_playbook(
        "ok.yml", limit=["rb-n1", "rb-n2"], step="configure", secret_extravars={"rb_secret": SECRET}
    )
    assert res.ok, res.describe()
    assert (res.status, res.rc, res.failed_hosts) == ("successful", 0, ())
    assert set(res.stats) == {"rb-n1", "rb-n2"}
    assert res.stats["rb-n1"].ok == 4 and res.stats["rb-n1"].changed == 2
    # the secret really reached the node...
    n1 = lab["nodes"].nodes["rb-n1"].container
    assert podman("exec", n1, "cat", "/root/rb-secret").stdout == SECRET
    assert podman("exec", n1, "cat", "/root/rb-vaulted").stdout == VAULT_SECRET
    # ...and appears nowhere in what the run left behind (job events, stdout, command, ...)
    assert res.artifacts_dir.is_relative_to(runner.settings.artifacts_dir)
    job_events = list((res.artifacts_dir / "job_events").glob("*.json"))
    assert len(job_events) > 5
    text = all_text_under(runner.settings.artifacts_dir)
    assert "rb write the secret" in text  # the task is recorded...
    assert SECRET not in text and VAULT_SECRET not in text  # ...its values are not
    assert secret_dirs() == before  # the secret extravars file was removed
    # live progress: trimmed events for every host/task
    oks = {(e.host, e.task) for e in runner.events if e.event == "runner_on_ok"}
    assert ("rb-n2", "rb hostname") in oks and ("rb-n1", "rb ping") in oks
    starts = [e.task for e in runner.events if e.event == "playbook_on_task_start"]
    assert starts[:2] == ["rb ping", "rb write the secret"]


def test_failing_task_on_one_host(runner):
    res = runner.run_playbook("fail.yml", limit="rb-n1,rb-n2", step="verify")
    assert not res.ok and res.status == "failed" and res.rc == 2
    assert res.failed_hosts == ("rb-n2",)
    f = res.failures["rb-n2"]
    assert f.task == "rb fail on n2" and "boom on rb-n2" in f.message and not f.unreachable
    assert res.stats["rb-n1"].failures == 0 and res.stats["rb-n1"].ok == 2
    assert "rb-n2: task `rb fail on n2` failed" in res.describe()


def test_limit_is_enforced_and_required(runner):
    res = runner.run_playbook("ping.yml", limit=["rb-n1"], step="ping")
    assert res.ok and set(res.stats) == {"rb-n1"}
    for bad in ("all", "", [], "*", ["rb-n1", "all"], "!rb-n1", "rb-*", "~rb.*", "rb-n1:&rb-n2"):
        with pytest.raises(ConfigError, match="explicit limit"):
            runner.run_playbook("ping.yml", limit=bad, step="ping")


def test_private_data_dir_per_step(runner):
    a = runner.run_playbook("ping.yml", limit="rb-n1", step="step a")
    b = runner.run_playbook("ping.yml", limit="rb-n1", step="step a")
    assert a.artifacts_dir != b.artifacts_dir
    assert a.artifacts_dir.parent.parent.name.endswith("step-a")
    assert not (a.artifacts_dir.parent.parent / "env" / "extravars").exists()


def test_run_command_returns_rc_stdout_stderr(runner):
    out = runner.run_command("rb-n1", ["sh", "-c", "echo '{\"a\": 1}'; echo warn >&2; exit 16"], step="ceph")
    assert (out.rc, out.stdout, out.stderr) == (16, '{"a": 1}', "warn")
    ok = runner.run_command("rb-n2", ["hostname"], step="probe")
    assert (ok.rc, ok.stdout) == (0, "rb-n2")


def test_reimaged_node_host_key_is_refused_until_forgotten(lab, runner):
    nodes = lab["nodes"]
    ip = nodes.nodes["rb-n2"].ip
    kh = runner.settings.known_hosts
    assert runner.run_playbook("ping.yml", limit="rb-n2", step="before").ok
    old_key = nodes.host_key("rb-n2")
    assert old_key in kh.read_text()
    nodes.reimage("rb-n2")  # same IP, fresh host key
    assert nodes.nodes["rb-n2"].ip == ip and nodes.host_key("rb-n2") != old_key
    refused = runner.run_playbook("ping.yml", limit="rb-n2", step="after-reimage")
    assert not refused.ok and refused.failures["rb-n2"].unreachable
    assert "host key" in refused.failures["rb-n2"].message.lower()
    assert runner.forget_host_keys([ip]) == 1
    assert old_key not in kh.read_text()
    again = runner.run_playbook("ping.yml", limit="rb-n2", step="after-forget")
    assert again.ok, again.describe()
    assert nodes.host_key("rb-n2") in kh.read_text()


def test_forget_host_keys_plain_hashed_and_ports(tmp_path):
    import base64
    import hashlib
    import hmac

    salt = b"0123456789abcdefghij"
    hashed = "|1|{}|{}".format(
        base64.b64encode(salt).decode(),
        base64.b64encode(hmac.new(salt, b"10.1.2.3", hashlib.sha1).digest()).decode(),
    )
    kh = tmp_path / "known_hosts"
    kh.write_text(
        "# comment\n"
        "10.1.2.3 ssh-ed25519 AAAAold\n"
        "node-a,10.9.9.9 ssh-ed25519 AAAAkeep\n"
        f"{hashed} ssh-ed25519 AAAAhashed\n"
        "[10.1.2.3]:2222 ssh-ed25519 AAAAport\n"
    )
    assert forget_host_keys(kh, ["10.1.2.3"]) == 2
    assert kh.read_text() == "# comment\nnode-a,10.9.9.9 ssh-ed25519 AAAAkeep\n[10.1.2.3]:2222 ssh-ed25519 AAAAport\n"
    assert forget_host_keys(kh, ["10.1.2.3"], port=2222) == 1
    assert forget_host_keys(tmp_path / "missing", ["x"]) == 0


def test_missing_playbook_is_a_config_error(tmp_path):
    r = AnsibleRunner(AnsibleSettings(inventory=tmp_path, artifacts_dir=tmp_path / "a", known_hosts=tmp_path / "kh",
                                      project_dir=tmp_path))  # fmt: skip
    with pytest.raises(ConfigError, match="not found"):
        r.run_playbook("nope.yml", limit="rb-n1", step="x")
    assert not (tmp_path / "a").exists()  # refused before anything was created
