"""End to end on the lab: `rollout apply --region lab` with real Ansible over SSH, real Redfish (sushy-tools),
real Ceph and OVN; then a re-image of one node; then random SIGKILLs during re-images, each resumed.

Stand-ins (see docs/lab.md): containers play the servers, the PXE install is a container re-creation
by the lab provisioner, kubelet/kubeadm and NVIDIA packages are stand-ins; there is no kube-apiserver,
so cordon/drain/uncordon are skipped (the plan says so).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from rollout.backends.orphans import find_marked
from tests.e2e.conftest import ROOT, Lab, rollout

pytestmark = [pytest.mark.integration, pytest.mark.lab]

LAB_SCOPE = (ROOT / ".rollout" / "lab").resolve()  # the region's state dir marks its Ansible processes


def _osd_ids_by_host(lab: Lab) -> dict[str, list[int]]:
    tree = lab.ceph("osd", "tree")
    by_id = {n["id"]: n for n in tree["nodes"]}  # type: ignore[index]
    out = {}
    for n in tree["nodes"]:  # type: ignore[index]
        if n["type"] == "host":
            out[n["name"]] = sorted(c for c in n.get("children", []) if by_id.get(c, {}).get("type") == "osd")
    return out


def _osds_up(lab: Lab) -> set[int]:
    dump = lab.ceph("osd", "dump")
    return {o["osd"] for o in dump["osds"] if o["up"]}  # type: ignore[index]


def _noout_groups(lab: Lab) -> list[str]:
    dump = lab.ceph("osd", "dump")
    flags = dump.get("crush_node_flags") or {}  # type: ignore[union-attr]
    return sorted(k for k, v in flags.items() if "noout" in v)


def test_apply_brings_every_node_online(lab: Lab) -> None:
    proc = rollout("apply", "--region", "lab", "--yes", "-o", "json")
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout)
    assert doc["quarantined"] == [] and not doc["interrupted"]
    osds = _osd_ids_by_host(lab)
    up = _osds_up(lab)
    for node in lab.nodes:
        assert osds.get(node), f"{node} has no OSD in the CRUSH map: {osds}"
        assert set(osds[node]) <= up
    chassis = lab.ovn_chassis()
    assert sorted(c["hostname"] for c in chassis) == sorted(lab.nodes)
    assert _noout_groups(lab) == []
    # Running it again is a no-op plan: every node is observed up to date.
    again = rollout("apply", "--region", "lab", "--yes")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to do." in again.stderr


def test_reimage_one_node_keeps_osds_and_chassis(lab: Lab) -> None:
    node = lab.nodes[0]
    before_osds = _osd_ids_by_host(lab)[node]
    before_chassis = [c for c in lab.ovn_chassis() if c["hostname"] == node]
    before = lab.reinstalls().get(node, 0)
    proc = rollout("reimage", node, "--region", "lab", "--yes", "--reason", "e2e test")
    assert proc.returncode == 0, proc.stderr[-4000:]
    # The good output docs/oncall.md page 2 quotes.
    assert re.search(r"Run \S+ in \d+m\d\ds: 1 done, 0 quarantined, 0 not started; artifacts: ", proc.stderr)
    assert proc.stderr.rstrip().endswith(
        "All nodes done.\nNext: rollout plan --region lab   (should now show no changes)"), proc.stderr[-800:]
    assert lab.reinstalls().get(node, 0) == before + 1  # re-installed exactly once
    assert _osd_ids_by_host(lab)[node] == before_osds  # the same OSD ids, re-activated
    assert set(before_osds) <= _osds_up(lab)
    after_chassis = [c for c in lab.ovn_chassis() if c["hostname"] == node]
    assert [c["name"] for c in after_chassis] == [c["name"] for c in before_chassis]  # same system-id, no dup
    assert _noout_groups(lab) == []
    hist = rollout("history", "--region", "lab", "--node", node, check=True)
    assert "e2e test" in hist.stderr
    after = rollout("plan", "--region", "lab", check=True)  # observes live: the re-imaged node is up to date
    assert "Observation: live" in after.stderr and "Plan: no changes" in after.stderr, after.stderr


def test_no_secret_in_journal_or_artifacts(lab: Lab) -> None:
    """After the runs above: none of the lab's generated vault values (BMC passwords, GRID token, join token,
    Ceph bootstrap key) appears in the journal or in any ansible-runner artifact of any run."""
    from rollout.inventory import load_region

    secrets = load_region(ROOT / "inventories", "lab").secret_values()
    assert len(secrets) >= 4, len(secrets)
    assert lab.secret_leaks(list(secrets)) == []


def test_b2_overhead_quick_smoke(lab: Lab) -> None:
    """B2's CI smoke variant (one node, one repetition) needs the lab, so it runs here; no timing asserted."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "b2_overhead.py"), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "CONTAINERS_CONF": str(ROOT / "images" / "containers.conf")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "median: ansible-playbook" in proc.stdout and "ratio" in proc.stdout, proc.stdout


@pytest.mark.crash
@pytest.mark.timeout(0)  # 20 kill-and-resume runs take longer than the default per-test timeout
def test_random_kills_then_resume(lab: Lab, request: pytest.FixtureRequest) -> None:
    """SIGKILL `rollout reimage` at a random moment, resume with `rollout apply`: every node ends done,
    none re-installed twice, no noout left; the time until the resumed run acts is recorded in
    .rollout/crash-test-results.json (docs/reliability.md)."""
    runs = int(request.config.getoption("--crash-runs"))
    rng = random.Random(int(os.environ.get("ROLLOUT_CRASH_SEED", "20261129")))
    results = []
    for i in range(runs):
        node = lab.nodes[i % len(lab.nodes)]
        before = lab.reinstalls().get(node, 0)
        env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "images" / "containers.conf")}
        proc = subprocess.Popen([sys.executable, "-m", "rollout.cli.main", "reimage", node, "--region", "lab",
                                 "--yes", "--reason", f"crash test {i}"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(1.0, 60.0)
        try:
            proc.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
        orphans = [p.command for p in find_marked(LAB_SCOPE)]  # playbooks the kill left running
        left_work = _unfinished_in_journal()
        started = time.monotonic()
        resume = subprocess.Popen([sys.executable, "-m", "rollout.cli.main", "apply", "--region", "lab", "--yes"],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first_action = _first_journal_write_after(started, timeout=60) if left_work else None
        _, err = resume.communicate(timeout=3600)
        assert resume.returncode == 0, err[-4000:]
        count = lab.reinstalls().get(node, 0) - before
        assert count <= 1, f"{node} re-installed {count} times after a kill at {delay:.1f}s"
        assert _noout_groups(lab) == []
        assert find_marked(LAB_SCOPE) == [], "a process of the killed or resumed run is still running"
        results.append({"run": i, "node": node, "kill_after_s": round(delay, 1), "killed": killed,
                        "left_work": sorted(left_work), "reinstalls": count, "resume_first_action_s": first_action,
                        "orphans_after_kill": len(orphans),
                        "orphans_stopped_by_resume": "process(es) left by a killed run" in err})
        report = ROOT / ".rollout" / "crash-test-results.json"
        report.write_text(json.dumps(results, indent=2))  # after every run: a long suite leaves a record
        if left_work:  # a kill before the operation started leaves nothing to resume (and nothing done)
            # How fast the resume acts is recorded, not asserted: timings belong in bench/ and the reports.
            assert first_action is not None, results[-1]
            assert count == 1, results[-1]  # the interrupted re-image was finished, exactly once
        done = rollout("status", "--region", "lab", "-o", "json", check=True)
        assert not [n for n in json.loads(done.stdout)["nodes"] if n["unfinished"] or n["quarantined"]]


def _unfinished_in_journal() -> set[str]:
    """Nodes the killed run left with an unfinished operation or an accepted-but-unstarted plan entry."""
    from rollout.executor.resume import pending_plan, unfinished_operations
    from rollout.journal import Journal

    with Journal.open("lab", ROOT / ".rollout") as journal:
        transitions = journal.transitions()
    return set(unfinished_operations(transitions)) | set(pending_plan(transitions))


def _first_journal_write_after(started: float, timeout: float) -> float | None:
    """Seconds until the resumed run wrote its first journal row (the run record)."""
    import sqlite3

    db = ROOT / ".rollout" / "lab" / "journal.sqlite"
    wall_start = time.time() - (time.monotonic() - started)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            row = con.execute("SELECT started FROM runs ORDER BY started DESC LIMIT 1").fetchone()
            con.close()
        except sqlite3.Error:
            row = None
        if row:
            from datetime import datetime

            ts = datetime.fromisoformat(row[0]).timestamp()
            if ts >= wall_start - 0.5:
                return max(0.0, ts - wall_start)
        time.sleep(0.1)
    return None
