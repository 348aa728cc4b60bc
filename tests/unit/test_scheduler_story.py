"""Golden rollout story: a 2-rack region taken through the scheduler, every decision logged with its reasons.

The world is scripted and deterministic: after each decision the in-flight node earliest in name order moves
one stage; r1-n3 never comes back after its reboot (failed, rescued, quarantined; Ceph backfills its data);
Ceph becomes active+clean one step after a rack has nothing left down. The story is pinned in
tests/golden/scheduler/story_two_racks.txt (regenerate with `pytest --update-golden` or
ROLLOUT_UPDATE_GOLDEN=1).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rollout.model.region import Policy
from rollout.planner.scheduler import NodeState, Scheduler, Snapshot, Stage, Status, WorkItem
from tests.conftest_golden import check_golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "scheduler" / "story_two_racks.txt"
NEXT = {Stage.PREPARING: Stage.READY, Stage.PROVISIONING: Stage.RETURNING}


def story() -> str:
    items = [WorkItem(f"r{r}-n{h}", f"r{r}", "T4" if h == 1 else None) for r in (1, 2) for h in (1, 2, 3)]
    items.append(WorkItem("r2-cfg", "r2", None, disruptive=False, needs_provisioning=False))
    policy = Policy(max_unavailable=3, max_failures=2, provisioning_concurrency=2,
                    gpu_capacity_floor=(("T4", 1),))
    sched = Scheduler(items, policy, {"T4": 2})
    by = {i.node: i for i in items}
    states: dict[str, NodeState] = {}
    open_domain: str | None = None
    dirty_for = 0  # steps until Ceph is active+clean again
    log: list[str] = []
    for step in range(60):
        down = {by[n].failure_domain for n, s in states.items() if s.osds_down}
        ok = {n: not (down - {by[n].failure_domain}) for n, s in states.items() if s.stage is Stage.READY}
        d = sched.decide(Snapshot(states=dict(states), open_domain=open_domain, ceph_clean=dirty_for == 0,
                                  ok_to_stop=ok, now=float(step)))
        lines = [f"t={step:02d} open={d.open_domain or '-'} in_flight={d.in_flight} clean={dirty_for == 0}"]
        lines += [f"  closed {d.closed_domain}"] if d.closed_domain else []
        lines += [f"  admit {v.node}: {v.reason}" for v in d.admit]
        lines += [f"  start {v.node}: {v.reason}" for v in d.start]
        lines += [f"  wait  {v.node}: {v.reason}" for v in d.skipped]
        lines += [f"  HALT {d.halt}"] if d.halt else []
        log += lines
        open_domain = d.open_domain
        for v in d.admit:
            states[v.node] = NodeState(Status.IN_FLIGHT, Stage.PROVISIONING)
        for v in d.start:
            states[v.node] = NodeState(Status.IN_FLIGHT,
                                       Stage.PREPARING if by[v.node].disruptive else Stage.CONFIGURING)
        if d.finished or d.stalled:
            log.append("FINISHED" if d.finished else "STALLED")
            break
        moving = sorted(n for n, s in states.items()
                        if s.status is Status.IN_FLIGHT and s.stage is not Stage.READY)
        if dirty_for:
            dirty_for -= 1
        if not moving:
            continue
        n = moving[0]
        stage = states[n].stage
        if n == "r1-n3" and stage is Stage.RETURNING:
            states[n] = NodeState(Status.QUARANTINED, stage, "no SSH after reboot")
            log.append(f"  event {n}: never returned -> rescued, quarantined; Ceph backfills")
            dirty_for = 3
        elif stage in NEXT:
            states[n] = NodeState(Status.IN_FLIGHT, NEXT[stage])
            log.append(f"  event {n}: {stage} -> {NEXT[stage]}")
        else:
            states[n] = NodeState(Status.DONE)
            log.append(f"  event {n}: {stage} -> done")
            dirty_for = max(dirty_for, 1) if stage is Stage.RETURNING else dirty_for
    return "\n".join(log) + "\n"


def test_two_rack_story(request: pytest.FixtureRequest) -> None:
    text = story()
    assert text.endswith("FINISHED\n")
    update = bool(request.config.getoption("--update-golden", default=False)) or (
        os.environ.get("ROLLOUT_UPDATE_GOLDEN") == "1")
    check_golden(GOLDEN, text.encode(), update)
