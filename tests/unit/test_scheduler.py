"""Table tests for rollout.planner.scheduler: one situation each, the decision and its reasons."""

from __future__ import annotations

import pytest

from rollout.model.region import Policy
from rollout.planner.scheduler import (
    NodeState,
    Scheduler,
    Snapshot,
    Stage,
    Status,
    WorkItem,
    natural_key,
)

PREP = NodeState(Status.IN_FLIGHT, Stage.PREPARING)
READY = NodeState(Status.IN_FLIGHT, Stage.READY)
PROV = NodeState(Status.IN_FLIGHT, Stage.PROVISIONING)
RET = NodeState(Status.IN_FLIGHT, Stage.RETURNING)
DONE = NodeState(Status.DONE)
QUAR = NodeState(Status.QUARANTINED, Stage.PREPARING, "drain stuck")


def fleet(racks: int = 2, hosts: int = 3, t4: tuple[str, ...] = ()) -> list[WorkItem]:
    return [
        WorkItem(f"r{r}-n{h}", f"r{r}", "T4" if f"r{r}-n{h}" in t4 else None)
        for r in range(1, racks + 1)
        for h in range(1, hosts + 1)
    ]


def sched(items: list[WorkItem], **pol: object) -> Scheduler:
    defaults: dict[str, object] = dict(max_unavailable=3, max_failures=2, provisioning_concurrency=3)
    defaults.update(pol)
    policy = Policy(**defaults)  # type: ignore[arg-type]
    totals: dict[str, int] = {}
    for i in items:
        if i.gpu_model:
            totals[i.gpu_model] = totals.get(i.gpu_model, 0) + 1
    return Scheduler(items, policy, totals)


def names(verdicts: tuple[object, ...]) -> list[str]:
    return [v.node for v in verdicts]  # type: ignore[attr-defined]


def reasons(d: object) -> dict[str, str]:
    return {v.node: v.reason for v in d.skipped}  # type: ignore[attr-defined]


def test_first_decision_starts_first_domain_gpu_first_and_explains_the_rest() -> None:
    s = sched(fleet(t4=("r1-n3",)), max_unavailable=2)
    d = s.decide(Snapshot(states={}))
    assert names(d.start) == ["r1-n3", "r1-n1"]  # GPU node (longest job) first
    assert d.open_domain is None and not d.admit and not d.finished and not d.stalled
    r = reasons(d)
    assert r["r1-n2"] == "max_unavailable 2 reached (2 out)"
    assert "r2 waits for r1" in r["r2-n1"]


def test_ready_nodes_open_the_domain_within_provisioning_slots() -> None:
    s = sched(fleet(), provisioning_concurrency=2)
    states = {"r1-n1": READY, "r1-n2": READY, "r1-n3": READY}
    d = s.decide(Snapshot(states=states, ok_to_stop={n: True for n in states}))
    assert d.open_domain == "r1"
    assert names(d.admit) == ["r1-n1", "r1-n2"]
    assert reasons(d)["r1-n3"] == "provisioning slots full: 2 of 2 in use"


def test_provisioning_slot_is_released_when_reprovision_finishes() -> None:
    s = sched(fleet(), provisioning_concurrency=1)
    ok = {"r1-n2": True}
    busy = s.decide(Snapshot(states={"r1-n1": PROV, "r1-n2": READY}, open_domain="r1", ok_to_stop=ok))
    assert not busy.admit
    freed = s.decide(Snapshot(states={"r1-n1": RET, "r1-n2": READY}, open_domain="r1", ok_to_stop=ok))
    assert names(freed.admit) == ["r1-n2"]


def test_next_domain_waits_while_open_domain_has_osds_down() -> None:
    s = sched(fleet())
    states = {"r1-n1": RET, "r1-n2": DONE, "r1-n3": DONE, "r2-n1": READY}
    d = s.decide(Snapshot(states=states, open_domain="r1", ok_to_stop={"r2-n1": True}))
    assert not d.admit and d.open_domain == "r1"
    assert reasons(d)["r2-n1"] == (
        "r2 waits for r1 to finish and be active+clean (one failure domain at a time)")


def test_next_domain_waits_for_active_clean_then_opens() -> None:
    s = sched(fleet())
    states = {"r1-n1": DONE, "r1-n2": DONE, "r1-n3": DONE, "r2-n1": READY}
    dirty = s.decide(Snapshot(states=states, open_domain="r1", ceph_clean=False, ok_to_stop={"r2-n1": True}))
    assert not dirty.admit and dirty.open_domain == "r1" and dirty.closed_domain is None
    clean = s.decide(Snapshot(states=states, open_domain="r1", ceph_clean=True, ok_to_stop={"r2-n1": True}))
    assert clean.closed_domain == "r1" and clean.open_domain == "r2"
    assert names(clean.admit) == ["r2-n1"]
    assert names(clean.start) == ["r2-n2", "r2-n3"]


def test_unknown_ok_to_stop_is_probed_and_refusal_is_explained() -> None:
    s = sched(fleet())
    states = {"r1-n1": PROV, "r1-n2": READY, "r1-n3": READY}
    d = s.decide(Snapshot(states=states, open_domain="r1", ok_to_stop={"r1-n3": False}))
    assert d.probe_ok_to_stop == ("r1-n2",) and not d.admit
    assert reasons(d)["r1-n3"].startswith("ceph osd ok-to-stop refuses")


def test_domain_does_not_open_without_ok_to_stop() -> None:
    s = sched(fleet())
    d = s.decide(Snapshot(states={"r1-n1": READY}, ok_to_stop={"r1-n1": False}))
    assert d.open_domain is None and not d.admit


def test_gpu_floor_blocks_with_numbers() -> None:
    items = fleet(hosts=3, t4=("r1-n1", "r1-n2", "r2-n1", "r2-n2"))
    s = sched(items, gpu_capacity_floor=(("T4", 3),))
    d = s.decide(Snapshot(states={}))
    assert names(d.start) == ["r1-n1", "r1-n3"]
    assert reasons(d)["r1-n2"] == "GPU floor T4: 3 in service, floor 3"


def test_quarantined_gpu_node_counts_out_of_service_and_can_block_for_good() -> None:
    items = fleet(racks=1, hosts=2, t4=("r1-n1", "r1-n2"))
    s = sched(items, gpu_capacity_floor=(("T4", 1),))
    lost = NodeState(Status.QUARANTINED, Stage.RETURNING, "no SSH after reboot")
    d = s.decide(Snapshot(states={"r1-n1": lost}))
    assert not d.start and d.stalled and d.open_domain is None
    assert reasons(d)["r1-n2"] == "GPU floor T4: 1 in service, floor 1; nothing in flight can restore it"


def test_halt_at_max_failures_stops_starts_and_admissions() -> None:
    s = sched(fleet(), max_failures=2)
    states = {"r1-n1": QUAR, "r1-n2": NodeState(Status.FAILED, Stage.RETURNING, "no ssh"), "r1-n3": READY}
    d = s.decide(Snapshot(states=states, open_domain="r1", ok_to_stop={"r1-n3": True}))
    assert d.halt == "2 failures >= max_failures 2"
    assert not d.start and not d.admit
    assert reasons(d)["r1-n3"].startswith("rollout halted")


def test_quarantined_nodes_free_their_slot_but_count_as_failures() -> None:
    s = sched(fleet(), max_unavailable=1, max_failures=5)
    d = s.decide(Snapshot(states={"r1-n1": QUAR}))
    assert names(d.start) == ["r1-n2"] and d.failures == 1


def test_failed_node_with_osds_down_keeps_domain_open() -> None:
    s = sched(fleet(), max_failures=5)
    states = {"r1-n1": NodeState(Status.FAILED, Stage.RETURNING), "r1-n2": DONE, "r1-n3": DONE,
              "r2-n1": READY}
    d = s.decide(Snapshot(states=states, open_domain="r1", ok_to_stop={"r2-n1": True}))
    assert d.open_domain == "r1" and not d.admit


def test_configure_is_not_fd_gated_but_uses_the_budget() -> None:
    items = [*fleet(racks=1), WorkItem("r2-c1", "r2", disruptive=False, needs_provisioning=False)]
    s = sched(items, max_unavailable=2)
    d = s.decide(Snapshot(states={"r1-n1": RET}, open_domain="r1"))
    assert names(d.start) == ["r1-n2"]
    assert reasons(d)["r2-c1"] == "max_unavailable 2 reached (2 out)"
    d2 = s.decide(Snapshot(states={"r1-n1": RET, "r1-n2": DONE, "r1-n3": DONE}, open_domain="r1"))
    assert names(d2.start) == ["r2-c1"]
    assert d2.start[0].reason.startswith("configure is not disruptive")


def test_predrain_next_domain_once_open_domain_all_started() -> None:
    s = sched(fleet(), max_unavailable=4)
    states = {"r1-n1": PROV, "r1-n2": PROV, "r1-n3": DONE}
    d = s.decide(Snapshot(states=states, open_domain="r1"))
    assert names(d.start) == ["r2-n1", "r2-n2"]
    assert d.start[0].reason == "pre-drain: r2 is the next failure domain"


def test_resume_adopts_the_domain_with_osds_down() -> None:
    s = sched(fleet())
    d = s.decide(Snapshot(states={"r2-n2": RET}, open_domain=None))
    assert d.open_domain == "r2"
    assert names(d.start) == ["r2-n1", "r2-n3"]


def test_two_domains_down_is_refused() -> None:
    s = sched(fleet())
    d = s.decide(Snapshot(states={"r1-n1": RET, "r2-n1": PROV}))
    assert d.halt is not None and "r1, r2" in d.halt and not d.start and not d.admit


def test_finished_only_when_all_terminal_and_last_domain_clean() -> None:
    s = sched(fleet(racks=1))
    states = {"r1-n1": DONE, "r1-n2": DONE, "r1-n3": QUAR}
    assert not s.decide(Snapshot(states=states, open_domain="r1", ceph_clean=False)).finished
    d = s.decide(Snapshot(states=states, open_domain="r1", ceph_clean=True))
    assert d.finished and d.closed_domain == "r1" and d.open_domain is None


def test_explain_false_changes_only_far_skip_reasons() -> None:
    s = sched(fleet(racks=3))
    snap = Snapshot(states={"r1-n1": RET, "r1-n2": READY}, open_domain="r1", ok_to_stop={"r1-n2": True})
    full, lean = s.decide(snap), s.decide(snap, explain=False)
    assert (full.start, full.admit, full.open_domain, full.halt) == (lean.start, lean.admit, lean.open_domain,
                                                                      lean.halt)
    assert len(lean.skipped) < len(full.skipped)


def test_duplicate_nodes_are_rejected() -> None:
    with pytest.raises(ValueError):
        sched([WorkItem("a", "r1"), WorkItem("a", "r2")])


@pytest.mark.parametrize(("names_in", "expected"), [
    (["r10", "r2", "r1"], ["r1", "r2", "r10"]),
    (["rack-b", "rack-a10", "rack-a9"], ["rack-a9", "rack-a10", "rack-b"]),
])
def test_natural_domain_order(names_in: list[str], expected: list[str]) -> None:
    assert sorted(names_in, key=natural_key) == expected


def test_explicit_domain_order_wins_over_natural_order() -> None:
    items = fleet(racks=3)
    policy = Policy(max_unavailable=3, max_failures=2, provisioning_concurrency=3)
    d = Scheduler(items, policy, {}, domain_order=("r3", "r1")).decide(Snapshot(states={}))
    assert [v.node for v in d.start] == ["r3-n1", "r3-n2", "r3-n3"]


@pytest.mark.parametrize(("state", "blocks"), [
    (QUAR, False),  # stuck drain: rescued by uncordon, serves again
    (NodeState(Status.QUARANTINED, Stage.PROVISIONING), True),  # may have powered off: assume lost
    (NodeState(Status.QUARANTINED, Stage.PROVISIONING, in_service=True), False),  # executor saw it back
    (NodeState(Status.QUARANTINED, Stage.PREPARING, in_service=False), True),
])
def test_quarantined_gpu_capacity_follows_the_rescue(state: NodeState, blocks: bool) -> None:
    items = fleet(racks=1, hosts=2, t4=("r1-n1", "r1-n2"))
    d = sched(items, gpu_capacity_floor=(("T4", 1),)).decide(Snapshot(states={"r1-n1": state}))
    assert (names(d.start) == []) is blocks
