"""Fault tests of the execution engine on the lab (issue #6) that the runbook tests do not already make:
a node that never comes back from its re-install.

(Wrong BMC credentials and BMC down: test_runbook.py page 3; a play failing on one node: pages 7 and 8;
Ceph refusing ok-to-stop: page 5 for `reimage`, and the engine's wait-then-quarantine at the storage gate
in tests/unit/test_engine.py.)

Stand-in: the lab provisioner's fault file `.rollout/lab/faults/<node>` = `dead` keeps the node's
container off on every power-on, as a board that no longer POSTs; power-on through the BMC after the file
is removed boots the pending PXE override, like the repaired machine would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import yaml

from rollout.app.applying import bmc_factory
from rollout.inventory import load_region
from tests.e2e.conftest import ROOT, Lab, rollout
from tests.e2e.test_runbook import ENV, assert_region_settled, noout, said, wait_ceph_clean

pytestmark = [pytest.mark.integration, pytest.mark.lab]

REGION_YML = ROOT / "inventories" / "lab" / "region.yml"


@contextmanager
def reprovision_timeout(seconds: int) -> Iterator[None]:
    """A shorter `policy.timeouts.reprovision` for the test (region.yml is restored byte for byte)."""
    original = REGION_YML.read_text()
    doc = yaml.safe_load(original)
    old = doc["policy"]["timeouts"]["reprovision"]
    patched = original.replace(f"reprovision: {old}", f"reprovision: {seconds}", 1)
    assert patched != original
    REGION_YML.write_text(patched)
    try:
        yield
    finally:
        REGION_YML.write_text(original)


def test_node_that_never_comes_back_is_rescued_quarantined_and_retried(lab: Lab) -> None:
    rollout("apply", "--region", "lab", "--yes", check=True)
    node = lab.nodes[-1]
    before = lab.reinstalls().get(node, 0)
    fault = lab.state / "lab" / "faults" / node
    fault.parent.mkdir(parents=True, exist_ok=True)
    fault.write_text("dead\n")
    try:
        with reprovision_timeout(45):
            started = time.monotonic()
            run = rollout("reimage", node, "--region", "lab", "--yes", "--reason", "fault test: never comes back")
            took = time.monotonic() - started
    finally:
        fault.unlink(missing_ok=True)
    assert run.returncode == 4, said(run)
    assert f"{node} did not come back from the re-install within 45 s" in run.stderr, run.stderr
    assert "reprovision" in run.stderr and "rescue" in run.stderr.lower(), run.stderr
    assert f"rollout explain {node} --region lab" in run.stderr, run.stderr
    assert took < 45 + 240, took  # gave up at the policy's timeout, not later than the rescue needs
    assert noout(lab) == [], "the storage-fence rescue must unset noout"
    assert lab.reinstalls().get(node, 0) == before  # nothing was installed: the board stayed dark
    status = json.loads(rollout("status", "--region", "lab", "-o", "json", check=True).stdout)
    assert [n["node"] for n in status["nodes"] if n["quarantined"]] == [node], status

    # The machine is repaired and power-cycled through its BMC: it boots the pending PXE override.
    source = load_region(ROOT / "inventories", "lab")
    bmc_factory(source)(source.region.node(node)).power_cycle()
    deadline = time.monotonic() + 180
    while lab.reinstalls().get(node, 0) == before and time.monotonic() < deadline:
        time.sleep(2)
    assert lab.reinstalls().get(node, 0) == before + 1

    retry = rollout("apply", "--region", "lab", "--retry", node, "--yes")
    assert retry.returncode == 0, said(retry)
    # The node runs a fresh OS now: the retry configures it (site.yml + verify), it is not re-imaged again.
    assert f"{node}" in retry.stderr and "configure" in retry.stderr, retry.stderr
    assert lab.reinstalls().get(node, 0) == before + 1  # re-installed once in all, never twice
    wait_ceph_clean(lab)
    assert_region_settled(lab)


def _reprovision_intents(node: str) -> int:
    from rollout.journal import Journal, Kind

    with Journal.open("lab", ROOT / ".rollout") as journal:
        return sum(1 for t in journal.transitions(node=node) if t.kind is Kind.INTENT and t.step == "reprovision")


def test_ctrl_c_finishes_the_step_rescues_exits_130_and_apply_resumes(lab: Lab) -> None:
    """Ctrl-C (SIGINT) during the re-install: the step in flight finishes, the storage fence is rescued
    (noout unset), exit 130; `rollout apply` then finishes the re-image without a second re-install."""
    rollout("apply", "--region", "lab", "--yes", check=True)
    node = lab.nodes[0]
    before = lab.reinstalls().get(node, 0)
    intents = _reprovision_intents(node)
    proc = subprocess.Popen([sys.executable, "-m", "rollout.cli.main", "reimage", node, "--region", "lab", "--yes",
                             "--reason", "fault test: ctrl-c"], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while _reprovision_intents(node) == intents and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert proc.poll() is None, "the re-image ended before it reached reprovision"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "Stopping: the steps in flight finish, then rescues run" in err, err[-3000:]
    assert noout(lab) == [], "the storage-fence rescue must unset noout"
    status = json.loads(rollout("status", "--region", "lab", "-o", "json", check=True).stdout)
    assert [n["node"] for n in status["nodes"] if n["unfinished"]] == [node], status

    resumed = rollout("apply", "--region", "lab", "--yes")
    assert resumed.returncode == 0, said(resumed)
    assert lab.reinstalls().get(node, 0) == before + 1  # the interrupted re-image finished, once
    wait_ceph_clean(lab)
    assert_region_settled(lab)
