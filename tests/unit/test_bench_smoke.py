"""Smoke tests of the scheduling benchmarks: the quick variants run and their results have the structure
the design promises (no timing is asserted; simulated hours are model output, not wall time)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sim.engine import Engine  # noqa: E402
from bench.sim.fleet import fleet_of_size, lower_bound, make_trace  # noqa: E402
from bench.sim.strategies import Batches, Rollout, all_strategies  # noqa: E402

E = "(e) rollout scheduler"
FD_RESPECTING = ("(a)", "(c)", "(d)", "(e)")


def run(module: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", module, "--quick", *args], cwd=ROOT, check=True,
                   capture_output=True, text=True, timeout=600)


def test_b1_quick(tmp_path: Path) -> None:
    run("bench.b1_scheduling", "--out-dir", str(tmp_path), "--img", str(tmp_path / "b1.png"),
        "--workers", "1")
    data = json.loads((tmp_path / "b1.json").read_text())
    rows = data["summary"]
    assert {r["size"] for r in rows} == {12, 48}
    for r in rows:
        assert r["unfinished"] == 0, r["strategy"]
        if r["strategy"].startswith(FD_RESPECTING):
            assert r["fd_violations"] == 0, r["strategy"]
            # The lower bound holds for every schedule that keeps one failure domain disrupted at a time.
            assert r["ratio_p50"] >= 1.0 - 1e-9, r["strategy"]
    e = [r for r in rows if r["strategy"] == E]
    assert all(r["gpu_violations"] == 0 and r["max_provisioning"] <= 20 for r in e)
    blind = next(r for r in rows if r["size"] == 48 and r["strategy"].startswith("(b)"))
    assert blind["fd_violations"] > 0  # 20 % of 48 = 10 nodes spans two racks of 8
    assert (tmp_path / "b1.png").stat().st_size > 1000
    assert "| (e) rollout scheduler |" in (tmp_path / "b1.md").read_text()


def test_b6_quick(tmp_path: Path) -> None:
    run("bench.b6_faults", "--out-dir", str(tmp_path), "--workers", "1")
    data = json.loads((tmp_path / "b6.json").read_text())
    for variant in ("all_faults", "no_hw_loss"):
        rows = data[variant]
        assert {r["mult"] for r in rows} == {0.0, 1.0, 3.0}
        for r in rows:
            assert r["unfinished"] == 0
            if r["strategy"] == E:
                assert r["fd_violations"] == 0 and r["gpu_violations"] == 0


def test_b3_quick(tmp_path: Path) -> None:
    run("bench.b3_decision_latency", "--out-dir", str(tmp_path))
    rows = json.loads((tmp_path / "b3_latency.json").read_text())
    assert {r["explain"] for r in rows} == {True, False}
    assert all(r["decisions"] > 0 and math.isfinite(r["p99_ms"]) for r in rows)


def test_same_trace_same_result_and_faults_are_nested() -> None:
    fleet = fleet_of_size(24)
    a = Engine(fleet, make_trace(fleet, 3, 1.0)).run(Rollout(fleet))
    b = Engine(fleet, make_trace(fleet, 3, 1.0)).run(Rollout(fleet))
    assert a == b
    one, three = make_trace(fleet, 5, 1.0), make_trace(fleet, 5, 3.0)
    assert (one.prov == three.prov).all()
    assert (three.stuck_drain >= one.stuck_drain).all() and (three.no_return >= one.no_return).all()


@pytest.mark.parametrize("mult", [0.0, 3.0])
def test_rollout_never_violates_and_fd_blind_batches_do(mult: float) -> None:
    fleet = fleet_of_size(48)
    for seed in range(3):
        trace = make_trace(fleet, seed, mult)
        e = Engine(fleet, trace).run(Rollout(fleet))
        assert e.fd_violations == 0 and e.degraded_admissions == 0 and math.isfinite(e.makespan)
        assert e.max_in_flight <= fleet.policy().max_unavailable
        assert e.slot_queue_waits == 0  # the scheduler itself respects the provisioning limit
        if mult == 0.0:
            assert e.makespan >= lower_bound(fleet, trace)
        assert Engine(fleet, trace).run(Batches.percent(fleet)).fd_violations > 0


def test_every_strategy_finishes_every_node() -> None:
    fleet = fleet_of_size(12)
    trace = make_trace(fleet, 1, 3.0)
    for s in all_strategies(fleet, 1):
        sim = Engine(fleet, trace)
        res = sim.run(s)
        assert math.isfinite(res.makespan), res.strategy
        assert sim.terminal == fleet.size and sim.ceph_clean
