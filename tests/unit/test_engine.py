"""Engine tests with fake side effects: scheduling invariants, rescues, quarantine, resume, re-install fence.

The fakes record every step so the tests can check what happened in which order; the journal is a
real SQLite journal in tmp_path.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest

from rollout.errors import PermanentError
from rollout.executor.engine import Engine, Progress
from rollout.executor.ports import Interrupted, StepContext
from rollout.executor.resume import operation_header, quarantined_operations, unfinished_operations
from rollout.journal import Journal
from rollout.model import ActionKind, Policy
from rollout.model.observation import unknown
from rollout.model.region import Node, Region
from rollout.planner.plan import PlanRequest, make_plan
from tests.unit.factories import make_region


class FakeRunner:
    def __init__(self, region: Region, fail: dict[str, str] | None = None) -> None:
        self.region = region
        self.fail = fail or {}
        self.calls: list[tuple[str, str]] = []
        self.rescues: list[tuple[str, str]] = []
        self.fenced: set[str] = set()
        self.max_domains_fenced = 0
        self.reinstalls: dict[str, int] = {}
        self.happened_answer = True
        self._lock = threading.Lock()

    def run(self, step: str, ctx: StepContext) -> str:
        node = ctx.node.name
        with self._lock:
            self.calls.append((node, step))
            if step == "storage-fence":
                self.fenced.add(node)
                domains = {self.region.node(n).failure_domain for n in self.fenced}
                self.max_domains_fenced = max(self.max_domains_fenced, len(domains))
            if step == "storage-unfence":
                self.fenced.discard(node)
            if step == "reprovision":
                self.reinstalls[node] = self.reinstalls.get(node, 0) + 1
                ctx.note("reprovision", "issued", ctx.extra.get("marker", ""))
        if self.fail.get(node) == step:
            raise PermanentError(f"{node}: {step} exploded")
        return f"{step} ok"

    def rescue(self, step: str, ctx: StepContext) -> str:
        with self._lock:
            self.rescues.append((ctx.node.name, step))
            if step == "storage-fence":
                self.fenced.discard(ctx.node.name)
        return "rescued"

    def reinstall_marker(self, ctx: StepContext) -> str:
        return f"key-{ctx.node.name}-old"

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:
        with self._lock:
            self.calls.append((ctx.node.name, "reinstall_happened?"))
        return self.happened_answer


class FakeCeph:
    def all_active_clean(self) -> bool:
        return True

    def ok_to_stop(self, node: Node) -> bool:
        return True


class Quiet(Progress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def node(self, node: str, phase: str, message: str) -> None:
        self.lines.append(f"{node} {phase} {message}")

    def line(self, message: str) -> None:
        self.lines.append(message)


def reimage_all(region: Region) -> tuple:
    names = frozenset(n.name for n in region.nodes)
    plan = make_plan(region, unknown(region.name), PlanRequest(reimage=names), "2026-11-29T00:00:00Z")
    return plan.actions


def run_engine(tmp_path: Path, region: Region, actions: tuple, runner: FakeRunner, **kw: object):
    journal = Journal.open(region.name, tmp_path)
    run = journal.start_run("test")
    engine = Engine(region=region, actions=actions, runner=runner, ceph=FakeCeph(), journal=journal,
                    run_id=run.run_id, progress=Quiet(), poll=0.01, **kw)  # type: ignore[arg-type]
    return engine.run(), journal


def test_reimage_whole_region_one_domain_at_a_time(tmp_path: Path) -> None:
    region = make_region(racks=3, per_rack=3, policy=Policy(max_unavailable=3, max_failures=1,
                                                             provisioning_concurrency=2))
    runner = FakeRunner(region)
    outcome, journal = run_engine(tmp_path, region, reimage_all(region), runner)
    assert outcome.complete, outcome
    assert sorted(outcome.done) == sorted(n.name for n in region.nodes)
    assert runner.max_domains_fenced == 1
    assert all(count == 1 for count in runner.reinstalls.values())
    assert len(runner.reinstalls) == 9
    # Every node went through its steps in order.
    for node in region.nodes:
        steps = [s for n, s in runner.calls if n == node.name]
        assert steps == ["precheck", "storage-fence", "reprovision", "configure", "verify", "storage-unfence"]
    assert journal.open_intents() == []


def test_failure_rescues_and_quarantines_then_goes_on(tmp_path: Path) -> None:
    region = make_region(racks=2, per_rack=2, policy=Policy(max_unavailable=2, max_failures=2,
                                                             provisioning_concurrency=2))
    bad = region.nodes[0].name
    runner = FakeRunner(region, fail={bad: "configure"})
    outcome, _ = run_engine(tmp_path, region, reimage_all(region), runner)
    assert [n for n, _ in outcome.quarantined] == [bad]
    assert "configure failed" in outcome.quarantined[0][1] and "storage-unfence" in outcome.quarantined[0][1]
    assert (bad, "storage-fence") in runner.rescues
    assert len(outcome.done) == 3 and not outcome.complete
    assert not runner.fenced  # no noout left behind


def test_max_failures_halts(tmp_path: Path) -> None:
    region = make_region(racks=2, per_rack=2, policy=Policy(max_unavailable=1, max_failures=1,
                                                             provisioning_concurrency=1))
    first = region.nodes[0].name
    runner = FakeRunner(region, fail={first: "precheck"})
    outcome, _ = run_engine(tmp_path, region, reimage_all(region), runner)
    assert outcome.halted and "max_failures" in outcome.halted
    assert outcome.done == ()
    assert len(outcome.not_started) == 3


def _journal_unfinished(tmp_path: Path, region: Region, node: str, done: list[str], *, issued: bool,
                        open_reprovision: bool) -> Journal:
    journal = Journal.open(region.name, tmp_path)
    run = journal.start_run("crashed run")
    action = next(a for a in reimage_all(region) if a.node == node)
    journal.note(run.run_id, node, "operation", "started",
                 operation_header(action.kind.value, action.steps, action.reason))
    for step in done:
        journal.result(journal.intent(run.run_id, node, step), "ok")
    if open_reprovision:
        journal.intent(run.run_id, node, "reprovision", "marker=key-old")
        if issued:
            journal.note(run.run_id, node, "reprovision", "issued", "key-old")
    journal.close()
    return Journal.open(region.name, tmp_path)


@pytest.mark.parametrize(("issued", "happened", "expect_reinstalls"), [
    (True, True, 0),   # BMC accepted before the crash: never issue again
    (False, True, 0),  # crash between intent and BMC call, but it happened: observed, not re-issued
    (False, False, 1),  # crash before the BMC call and nothing happened: issue it now
])
def test_resume_never_reinstalls_twice(tmp_path: Path, issued: bool, happened: bool,
                                       expect_reinstalls: int) -> None:
    region = make_region(racks=2, per_rack=1, policy=Policy(max_unavailable=1, max_failures=1,
                                                             provisioning_concurrency=1))
    node = region.nodes[0].name
    journal = _journal_unfinished(tmp_path, region, node, ["precheck", "storage-fence"], issued=issued,
                                  open_reprovision=True)
    unfinished = unfinished_operations(journal.transitions())
    assert unfinished[node].osds_down and unfinished[node].reinstall_issued is issued
    runner = FakeRunner(region)
    runner.happened_answer = happened
    actions = tuple(a for a in reimage_all(region) if a.node == node)
    run = journal.start_run("resume")
    engine = Engine(region=region, actions=actions, runner=runner, ceph=FakeCeph(), journal=journal,
                    run_id=run.run_id, progress=Quiet(), unfinished=unfinished, poll=0.01)
    outcome = engine.run()
    assert outcome.complete
    assert runner.reinstalls.get(node, 0) == expect_reinstalls
    steps = [s for n, s in runner.calls if n == node]
    assert "precheck" not in steps and "storage-fence" not in steps  # not redone
    assert steps[-3:] == ["configure", "verify", "storage-unfence"]


def test_resume_with_reinstall_issued_but_never_happened_quarantines(tmp_path: Path) -> None:
    region = make_region(racks=1, per_rack=1, policy=Policy(max_unavailable=1, max_failures=1,
                                                             provisioning_concurrency=1))
    region = replace(region, policy=replace(region.policy, timeouts=replace(region.policy.timeouts, reprovision=1)))
    node = region.nodes[0].name
    journal = _journal_unfinished(tmp_path, region, node, ["precheck", "storage-fence"], issued=True,
                                  open_reprovision=True)
    runner = FakeRunner(region)
    runner.happened_answer = False
    run = journal.start_run("resume")
    engine = Engine(region=region, actions=reimage_all(region), runner=runner, ceph=FakeCeph(), journal=journal,
                    run_id=run.run_id, progress=Quiet(), unfinished=unfinished_operations(journal.transitions()),
                    poll=0.01)
    outcome = engine.run()
    assert runner.reinstalls.get(node, 0) == 0
    assert outcome.quarantined and "never completed" in outcome.quarantined[0][1]
    assert (node, "storage-fence") in runner.rescues  # noout unset even so


def test_configure_only_is_not_fenced(tmp_path: Path) -> None:
    region = make_region(racks=2, per_rack=2)
    plan = make_plan(region, unknown(region.name), PlanRequest(), "2026-11-29T00:00:00Z")
    assert {a.kind for a in plan.actions} == {ActionKind.CONFIGURE}
    runner = FakeRunner(region)
    outcome, _ = run_engine(tmp_path, region, plan.actions, runner)
    assert outcome.complete
    assert {s for _, s in runner.calls} == {"precheck", "configure", "verify"}


def test_stop_interrupts_and_resume_picks_up(tmp_path: Path) -> None:
    region = make_region(racks=1, per_rack=2, policy=Policy(max_unavailable=1, max_failures=1,
                                                             provisioning_concurrency=1))
    stop = threading.Event()
    stop.set()  # stopped before anything starts: nothing may happen
    runner = FakeRunner(region)
    outcome, _ = run_engine(tmp_path, region, reimage_all(region), runner, stop=stop)
    assert outcome.interrupted and runner.calls == []


class RefusingCeph(FakeCeph):
    def ok_to_stop(self, node: Node) -> bool:
        return False


def test_ceph_refusing_ok_to_stop_quarantines_after_timeout(tmp_path: Path) -> None:
    region = make_region(racks=1, per_rack=1, policy=Policy(max_unavailable=1, max_failures=1,
                                                             provisioning_concurrency=1))
    region = replace(region, policy=replace(region.policy, timeouts=replace(region.policy.timeouts, ceph_clean=0)))
    runner = FakeRunner(region)
    journal = Journal.open(region.name, tmp_path)
    run = journal.start_run("test")
    engine = Engine(region=region, actions=reimage_all(region), runner=runner, ceph=RefusingCeph(), journal=journal,
                    run_id=run.run_id, progress=Quiet(), poll=0.01)
    outcome = engine.run()
    assert outcome.quarantined and "ok-to-stop" in outcome.quarantined[0][1]
    assert "storage-fence" not in [s for _, s in runner.calls]  # never fenced, never re-imaged
    assert runner.reinstalls == {}


@pytest.mark.parametrize(("failed_step", "issued"), [("precheck", False), ("configure", True)])
def test_quarantined_operation_remembers_whether_the_reinstall_was_issued(
        tmp_path: Path, failed_step: str, issued: bool) -> None:
    """`--retry` re-takes a quarantined re-image only while the node was not re-installed yet."""
    region = make_region(racks=2, per_rack=1, policy=Policy(max_unavailable=1, max_failures=2,
                                                             provisioning_concurrency=1))
    bad = region.nodes[0].name
    _, journal = run_engine(tmp_path, region, reimage_all(region), FakeRunner(region, fail={bad: failed_step}))
    ops = quarantined_operations(journal.transitions())
    assert set(ops) == {bad}
    assert ops[bad].action == "reimage" and ops[bad].reinstall_issued is issued
    assert f"{failed_step} failed" in ops[bad].reason
    # A later finished operation on the node ends the quarantine.
    run = journal.start_run("later")
    journal.note(run.run_id, bad, "operation", "started", operation_header("configure", ["configure"], "x"))
    journal.note(run.run_id, bad, "operation", "done")
    assert quarantined_operations(journal.transitions()) == {}


class StoppedWhileWaiting(FakeRunner):
    """Ctrl-C arrives while `reprovision` waits for the node (after the BMC accepted the re-install)."""

    def __init__(self, region: Region, stop: threading.Event) -> None:
        super().__init__(region)
        self.stop = stop

    def run(self, step: str, ctx: StepContext) -> str:
        summary = super().run(step, ctx)
        if step == "reprovision":
            self.stop.set()
            raise Interrupted("stopped while the node re-installs")
        return summary


def test_ctrl_c_during_a_wait_interrupts_rescues_and_resumes_without_quarantine(tmp_path: Path) -> None:
    region = make_region(racks=1, per_rack=1, policy=Policy(max_unavailable=1, max_failures=1,
                                                             provisioning_concurrency=1))
    stop = threading.Event()
    runner = StoppedWhileWaiting(region, stop)
    outcome, journal = run_engine(tmp_path, region, reimage_all(region), runner, stop=stop)
    node = region.nodes[0].name
    assert outcome.interrupted and not outcome.quarantined, outcome
    assert (node, "storage-fence") in runner.rescues  # noout unset
    assert quarantined_operations(journal.transitions()) == {}
    pending = unfinished_operations(journal.transitions())[node]
    assert pending.reinstall_issued  # the resume waits for the re-install instead of issuing another


def test_a_failing_step_with_a_rescue_is_rescued_itself(tmp_path: Path) -> None:
    """A step may fail half-way (a drain cordons, then times out): its own rescue runs, not only those of
    the steps before it."""
    region = make_region(racks=2, per_rack=1, policy=Policy(max_unavailable=1, max_failures=2,
                                                             provisioning_concurrency=1))
    bad = region.nodes[0].name
    runner = FakeRunner(region, fail={bad: "storage-fence"})
    outcome, _ = run_engine(tmp_path, region, reimage_all(region), runner)
    assert [n for n, _ in outcome.quarantined] == [bad]
    assert (bad, "storage-fence") in runner.rescues and "rescued: storage-unfence" in outcome.quarantined[0][1]
    assert bad not in runner.reinstalls
