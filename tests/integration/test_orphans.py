"""A SIGKILLed rollout leaves its ansible-playbook running; the resume finds it by its marker and stops it.

Real processes only: a child Python process runs a real playbook through `AnsibleRunner` (a
`command: sleep` task on localhost, connection local), the test SIGKILLs that process, then checks
the playbook outlived it (the problem) and that `find_marked` + `stop_orphans` end it while leaving
a process of another region's scope alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rollout.backends.orphans import find_marked, marker_env, stop_orphans

pytestmark = pytest.mark.integration

DRIVER = """
import sys
from pathlib import Path
from rollout.backends.ansible import AnsibleRunner, AnsibleSettings

work = Path(sys.argv[1])
settings = AnsibleSettings(inventory=work / "hosts.yml", artifacts_dir=work / "runs" / "r-killed",
                           known_hosts=work / "known_hosts", project_dir=work, control_path_dir=work / "cp",
                           scope=work, run_id="r-killed")
AnsibleRunner(settings).run_playbook("sleep.yml", limit=["localhost"], step="configure-n01")
"""

PLAY = """
- name: Sleep long enough to be killed
  hosts: all
  gather_facts: false
  tasks:
    - name: sleep
      ansible.builtin.command: sleep 300
      changed_when: false
"""


def _wait_for(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return predicate()


def test_killed_run_leaves_a_playbook_that_the_resume_stops(tmp_path: Path) -> None:
    work = tmp_path / "region-state"
    work.mkdir()
    (work / "hosts.yml").write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                                    f"      ansible_python_interpreter: {sys.executable}\n")
    (work / "sleep.yml").write_text(textwrap.dedent(PLAY))
    # A process of another region (another scope) that must survive the sweep.
    bystander = subprocess.Popen(["sleep", "300"], env={**os.environ, **marker_env(tmp_path / "other", "r-x", "s")},
                                 start_new_session=True)
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(work)], start_new_session=True)
    try:
        def sleeping():
            procs = find_marked(work)
            return procs if any(p.command.startswith("sleep") for p in procs) else []

        marked = _wait_for(sleeping, 90)
        assert marked, "the playbook never reached its sleep task"
        assert {p.run_id for p in marked} == {"r-killed"}
        assert {p.step for p in marked} == {"configure-n01"}
        assert any("ansible-playbook" in p.command for p in marked), [p.command for p in marked]

        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        time.sleep(1.0)
        survivors = find_marked(work)
        assert any("ansible-playbook" in p.command for p in survivors), "expected the orphan the fix is for"

        stopped = stop_orphans(survivors, grace=10)
        assert {p.pid for p in stopped} == {p.pid for p in survivors}
        assert _wait_for(lambda: not find_marked(work), 5), find_marked(work)
        assert bystander.poll() is None, "a process of another scope was stopped"
        assert [p.pid for p in find_marked(tmp_path / "other")] == [bystander.pid]
    finally:
        for proc in (driver, bystander):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        leftovers = find_marked(work)
        if leftovers:
            stop_orphans(leftovers, grace=1)


def test_no_marked_process_means_nothing_to_stop(tmp_path: Path) -> None:
    assert find_marked(tmp_path / "nobody") == []
    assert stop_orphans([]) == []
