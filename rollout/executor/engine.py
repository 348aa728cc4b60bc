"""The engine: scheduler decisions in the main thread, node steps in worker threads, all journaled.

Invariants:
- Every side effect is bracketed in the journal: intent committed before, result after. A SIGKILL at
  any instant leaves the journal describing exactly which step may have been in flight.
- A re-install is issued at most once per operation: the `reprovision` intent records an observable
  (the node's SSH host key) before the BMC call, a `reprovision issued` note follows the BMC's
  acceptance, and resume waits for the observable instead of issuing again (see `_reprovision`).
- Only the main thread talks to the scheduler; workers report through a queue. The scheduler's
  invariants (one failure domain with OSDs down, max_unavailable, provisioning slots, GPU floors,
  halt after max_failures) therefore hold for everything the engine starts.
- A failed step runs the rescues of the steps the node completed (unset noout, uncordon), then the
  node is quarantined; the rollout goes on unless the policy says halt.
- On resume, nodes whose OSDs are down (fenced, not unfenced) are adopted as in flight first, so the
  scheduler keeps their failure domain open and opens no other.

NOTE: stop (Ctrl-C) is cooperative: the step in flight finishes, then the node's rescues run and the
operation is journaled `interrupted`; the next `rollout apply` resumes it.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from rollout.errors import PermanentError, RolloutError
from rollout.executor.ports import (
    PREP_STEPS,
    REINSTALL_STEP,
    RESCUES,
    SLOT_RELEASE_STEPS,
    CephGate,
    Interrupted,
    StepContext,
    StepRunner,
)
from rollout.executor.resume import Unfinished, operation_header
from rollout.journal import Journal
from rollout.model.plan import Action, ActionKind
from rollout.model.region import Region
from rollout.planner.scheduler import NodeState, Scheduler, Snapshot, Stage, Status, WorkItem


@dataclass
class Job:
    action: Action
    item: WorkItem
    steps: tuple[str, ...]
    done: set[str] = field(default_factory=set)
    resumed_from: str | None = None
    open_step: str | None = None
    reinstall_marker: str | None = None
    reinstall_issued: bool = False
    failure: str | None = None

    @property
    def prep_steps(self) -> tuple[str, ...]:
        if not self.item.disruptive:
            return self.steps
        return tuple(s for s in self.steps if s in PREP_STEPS)

    @property
    def main_steps(self) -> tuple[str, ...]:
        if not self.item.disruptive:
            return ()
        return tuple(s for s in self.steps if s not in PREP_STEPS)


@dataclass(frozen=True)
class WorkerEvent:
    node: str
    kind: str  # ready | stage | done | failed | interrupted
    stage: Stage = Stage.NONE
    message: str = ""


@dataclass(frozen=True)
class Outcome:
    run_id: str
    done: tuple[str, ...]
    quarantined: tuple[tuple[str, str], ...]
    not_started: tuple[str, ...]
    halted: str | None
    interrupted: bool
    stalled: str | None

    @property
    def complete(self) -> bool:
        return not (self.quarantined or self.not_started or self.interrupted or self.halted or self.stalled)


class Progress(Protocol):
    """Where the engine reports; the CLI provides a live table or plain lines (structural type)."""

    def node(self, node: str, phase: str, message: str) -> None: ...

    def line(self, message: str) -> None: ...


class NullProgress:
    """Reports nowhere (tools and tests that only look at the journal)."""

    def node(self, node: str, phase: str, message: str) -> None:
        pass

    def line(self, message: str) -> None:
        pass


class CrashPoints:
    """Test hook: SIGKILL ourselves at a step boundary (`ROLLOUT_CRASH_AT=node:step:before|after`,
    `*` matches anything; `ROLLOUT_CRASH_AT=boundary:N` kills at the N-th boundary crossed)."""

    def __init__(self, spec: str | None) -> None:
        self.spec = spec or ""
        self.count = 0
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> CrashPoints:
        return cls(os.environ.get("ROLLOUT_CRASH_AT"))

    def check(self, node: str, step: str, when: str) -> None:
        if not self.spec:
            return
        with self._lock:
            self.count += 1
            hit = False
            if self.spec.startswith("boundary:"):
                hit = self.count == int(self.spec.split(":", 1)[1])
            else:
                want = [*self.spec.split(":"), "*", "*", "*"][:3]
                hit = all(w in ("*", v) for w, v in zip(want, (node, step, when), strict=True))
            if hit:
                os.kill(os.getpid(), signal.SIGKILL)


def work_item(action: Action, region: Region) -> WorkItem:
    node = region.node(action.node)
    disruptive = action.kind.disrupts_node
    # Virtual-media BMCs do not need a PXE/DHCP slot; everything re-imaged by PXE or Ironic does.
    needs_slot = disruptive and node.bmc.driver != "redfish-virtualmedia"
    return WorkItem(node=action.node, failure_domain=action.failure_domain, gpu_model=action.gpu_model,
                    disruptive=disruptive, needs_provisioning=needs_slot)


class Engine:
    def __init__(
        self,
        *,
        region: Region,
        actions: tuple[Action, ...],
        runner: StepRunner,
        ceph: CephGate,
        journal: Journal,
        run_id: str,
        progress: Progress,
        unfinished: dict[str, Unfinished] | None = None,
        stop: threading.Event | None = None,
        crash: CrashPoints | None = None,
        poll: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.region = region
        self.runner = runner
        self.ceph = ceph
        self.journal = journal
        self.run_id = run_id
        self.progress = progress
        self.stop = stop or threading.Event()
        self.crash = crash or CrashPoints(None)
        self.poll = poll
        self.monotonic = monotonic
        self.events: queue.Queue[WorkerEvent] = queue.Queue()
        self.jobs: dict[str, Job] = {}
        unfinished = unfinished or {}
        for action in actions:
            if action.kind is ActionKind.NONE:
                continue
            job = Job(action=action, item=work_item(action, region), steps=action.steps)
            prior = unfinished.get(action.node)
            if prior is not None and prior.action == action.kind.value and prior.steps == action.steps:
                job.done = set(prior.done_steps)
                job.resumed_from = prior.run_id
                job.open_step = prior.open_step
                job.reinstall_marker = prior.reinstall_marker
                job.reinstall_issued = prior.reinstall_issued
            self.jobs[action.node] = job
        gpu_totals: dict[str, int] = {}
        for n in region.nodes:
            if n.gpu_model:
                gpu_totals[n.gpu_model] = gpu_totals.get(n.gpu_model, 0) + 1
        self.scheduler = Scheduler([j.item for j in self.jobs.values()], region.policy, gpu_totals)
        self.states: dict[str, NodeState] = {}
        self.ok_to_stop: dict[str, bool] = {}
        self.open_domain: str | None = None
        self.ceph_clean = True
        self._last_ceph_check = -1e9
        self.refused_since: dict[str, float] = {}  # READY node -> when Ceph first refused ok-to-stop

    # ------------------------------------------------------------------------------------------------
    def run(self) -> Outcome:
        pool = ThreadPoolExecutor(max_workers=max(1, self.region.policy.max_unavailable),
                                  thread_name_prefix="rollout-node")
        halted: str | None = None
        stalled: str | None = None
        try:
            self._adopt_resumed(pool)
            self._refresh_ceph(force=True)
            while True:
                decision = self.scheduler.decide(self._snapshot())
                self.open_domain = decision.open_domain
                if decision.closed_domain:
                    self.progress.line(f"Failure domain {decision.closed_domain} done and active+clean")
                # Ask Ceph about READY nodes it has no answer for: the scheduler opens the next failure
                # domain only on a positive ok-to-stop for one of its drained nodes.
                probe = list(decision.probe_ok_to_stop) or [
                    n for n, st in sorted(self.states.items())
                    if st.stage is Stage.READY and st.status is Status.IN_FLIGHT and n not in self.ok_to_stop
                ]
                if probe and not (decision.start or decision.admit):
                    for name in probe:
                        self.ok_to_stop[name] = self.ceph.ok_to_stop(self.region.node(name))
                        if self.ok_to_stop[name]:
                            self.refused_since.pop(name, None)
                        else:
                            self.refused_since.setdefault(name, self.monotonic())
                    continue
                self._give_up_refused(pool)
                if not self.stop.is_set() and not decision.halt:
                    for verdict in decision.start:
                        self._start(pool, verdict.node, verdict.reason)
                    for verdict in decision.admit:
                        self._admit(pool, verdict.node, verdict.reason)
                if decision.halt and not halted:
                    halted = decision.halt
                    self.progress.line(f"Halting: {decision.halt}; letting in-flight nodes finish")
                busy = any(s.status is Status.IN_FLIGHT for s in self.states.values())
                if decision.finished:
                    break
                if not busy and (self.stop.is_set() or halted):
                    break
                if decision.stalled and not busy:
                    reasons = sorted({v.reason for v in decision.skipped})
                    stalled = "; ".join(reasons) or "nothing can move"
                    self.progress.line(f"Stalled: {stalled}")
                    break
                self._wait_events(decision_moved=bool(decision.start or decision.admit))
        finally:
            pool.shutdown(wait=True)
            while not self.events.empty():
                self._apply(self.events.get_nowait())
        done = tuple(sorted(n for n, s in self.states.items() if s.status is Status.DONE))
        quarantined = tuple(sorted((n, s.reason) for n, s in self.states.items()
                                   if s.status in (Status.QUARANTINED, Status.FAILED)))
        not_started = tuple(sorted(n for n in self.jobs if self.states.get(n, NodeState()).status
                                   is Status.PENDING or (self.states[n].status is Status.IN_FLIGHT)))
        return Outcome(run_id=self.run_id, done=done, quarantined=quarantined, not_started=not_started,
                       halted=halted, interrupted=self.stop.is_set(), stalled=stalled)

    # ------------------------------------------------------------------------------------------------
    def _snapshot(self) -> Snapshot:
        return Snapshot(states=dict(self.states), open_domain=self.open_domain, ceph_clean=self.ceph_clean,
                        ok_to_stop=dict(self.ok_to_stop), now=self.monotonic())

    def _refresh_ceph(self, *, force: bool = False) -> None:
        now = self.monotonic()
        if force or now - self._last_ceph_check >= self.poll:
            self._last_ceph_check = now
            self.ceph_clean = self.ceph.all_active_clean()
            # Ceph's answers age: ask ok-to-stop again on the next decision.
            self.ok_to_stop.clear()

    def _give_up_refused(self, pool: ThreadPoolExecutor) -> None:
        """A drained node Ceph keeps refusing for `ceph_clean` seconds is rescued and quarantined."""
        limit = float(self.region.policy.timeouts.ceph_clean)
        now = self.monotonic()
        for name, since in sorted(self.refused_since.items()):
            state = self.states.get(name)
            if state is None or state.stage is not Stage.READY or now - since < limit:
                continue
            del self.refused_since[name]
            self.states[name] = NodeState(Status.FAILED, Stage.NONE, "ok-to-stop refused")
            reason = (f"storage-fence refused: `ceph osd ok-to-stop` said no for {int(now - since)} s "
                      f"(timeouts.ceph_clean {int(limit)} s)")
            pool.submit(self._abandon, self.jobs[name], reason)

    def _abandon(self, job: Job, reason: str) -> None:
        ctx = self._ctx(job)
        self.journal.note(self.run_id, job.action.node, "storage-fence", "refused", reason)
        rescued = self._rescue(job, ctx)
        why = reason + (f" (rescued: {rescued})" if rescued else "")
        self.journal.note(self.run_id, job.action.node, "operation", "quarantined", why)
        self.events.put(WorkerEvent(job.action.node, "failed", message=why))

    def _wait_events(self, *, decision_moved: bool) -> None:
        if decision_moved:
            return
        try:
            event = self.events.get(timeout=self.poll)
        except queue.Empty:
            self._refresh_ceph()
            return
        self._apply(event)
        while not self.events.empty():
            self._apply(self.events.get_nowait())
        self._refresh_ceph()

    def _apply(self, event: WorkerEvent) -> None:
        # Any change can change Ceph's answer: ask again before the next admission.
        self.ok_to_stop.clear()
        state = self.states.get(event.node, NodeState())
        if event.kind == "ready":
            self.states[event.node] = NodeState(Status.IN_FLIGHT, Stage.READY)
            self.progress.node(event.node, "ready", "drained; waiting at the storage gate")
        elif event.kind == "stage":
            self.states[event.node] = NodeState(Status.IN_FLIGHT, event.stage, state.reason)
        elif event.kind == "done":
            self.states[event.node] = NodeState(Status.DONE)
            self.progress.node(event.node, "done", event.message)
        elif event.kind == "failed":
            self.states[event.node] = NodeState(Status.QUARANTINED, Stage.NONE, event.message)
            self.progress.node(event.node, "quarantined", event.message)
        elif event.kind == "interrupted":
            self.states[event.node] = NodeState(Status.PENDING)
            self.progress.node(event.node, "interrupted", event.message)

    def _adopt_resumed(self, pool: ThreadPoolExecutor) -> None:
        """Nodes a killed run left with OSDs down go first, as in flight (their domain stays open)."""
        for name, job in sorted(self.jobs.items()):
            if job.resumed_from is None:
                continue
            fenced = "storage-fence" in job.done and "storage-unfence" not in job.done
            mid_fence = job.open_step == "storage-fence"
            if job.item.disruptive and (fenced or mid_fence):
                stage = Stage.RETURNING if job.done & SLOT_RELEASE_STEPS else Stage.PROVISIONING
                self.states[name] = NodeState(Status.IN_FLIGHT, stage)
                self.open_domain = job.item.failure_domain
                self.journal.note(self.run_id, name, "operation", "resumed",
                                  f"from run {job.resumed_from} with OSDs fenced")
                self.progress.node(name, "resume", f"resuming from run {job.resumed_from} with OSDs fenced "
                                   f"(done: {', '.join(s for s in job.steps if s in job.done)})")
                pool.submit(self._segment, job, job.main_steps)

    def _start(self, pool: ThreadPoolExecutor, name: str, reason: str) -> None:
        job = self.jobs[name]
        stage = Stage.PREPARING if job.item.disruptive else Stage.CONFIGURING
        self.states[name] = NodeState(Status.IN_FLIGHT, stage)
        if job.resumed_from:
            self.journal.note(self.run_id, name, "operation", "resumed",
                              f"from run {job.resumed_from}; done: {', '.join(sorted(job.done)) or 'nothing'}")
        else:
            self.journal.note(self.run_id, name, "operation", "started",
                              operation_header(job.action.kind.value, job.steps, job.action.reason))
        self.progress.node(name, stage.value, f"{job.action.kind.value}: {reason}")
        pool.submit(self._segment, job, job.prep_steps, True)

    def _admit(self, pool: ThreadPoolExecutor, name: str, reason: str) -> None:
        job = self.jobs[name]
        self.states[name] = NodeState(Status.IN_FLIGHT, Stage.PROVISIONING)
        self.progress.node(name, "provisioning", reason)
        pool.submit(self._segment, job, job.main_steps)

    # -- worker side ------------------------------------------------------------------------------------
    def _ctx(self, job: Job) -> StepContext:
        name = job.action.node

        def note(step: str, status: str, summary: str) -> None:
            self.journal.note(self.run_id, name, step, status, summary)

        return StepContext(run_id=self.run_id, node=self.region.node(name), action=job.action, stop=self.stop,
                           say=lambda msg: self.progress.node(name, "", msg), note=note)

    def _segment(self, job: Job, steps: tuple[str, ...], prep: bool = False) -> None:
        name = job.action.node
        ctx = self._ctx(job)
        try:
            for step in steps:
                if step in job.done:
                    continue
                if self.stop.is_set():
                    raise Interrupted("stopped by the operator")
                self.crash.check(name, step, "before")
                self.progress.node(name, step, "")
                if step == REINSTALL_STEP:
                    self._reprovision(job, ctx)
                else:
                    intent = self.journal.intent(self.run_id, name, step)
                    summary = self.runner.run(step, ctx)
                    self.journal.result(intent, "ok", summary)
                job.done.add(step)
                self.crash.check(name, step, "after")
                if step in SLOT_RELEASE_STEPS:
                    self.events.put(WorkerEvent(name, "stage", Stage.RETURNING))
        except Interrupted as exc:
            self._rescue(job, ctx, in_flight=next((s for s in steps if s not in job.done), None))
            self.journal.note(self.run_id, name, "operation", "interrupted", str(exc))
            self.events.put(WorkerEvent(name, "interrupted", message=str(exc)))
            return
        except Exception as exc:
            message = exc.message if isinstance(exc, RolloutError) else f"{type(exc).__name__}: {exc}"
            message = self.journal.redact(message)
            failed_step = next((s for s in steps if s not in job.done), "?")
            self.journal.note(self.run_id, name, failed_step, "failed", message)
            rescued = self._rescue(job, ctx, in_flight=failed_step)
            why = f"{failed_step} failed: {message}" + (f" (rescued: {rescued})" if rescued else "")
            self.journal.note(self.run_id, name, "operation", "quarantined", why)
            self.events.put(WorkerEvent(name, "failed", message=why))
            return
        if prep and job.item.disruptive:
            self.events.put(WorkerEvent(name, "ready"))
            return
        self.journal.note(self.run_id, name, "operation", "done", job.action.kind.value)
        self.events.put(WorkerEvent(name, "done", message=f"{job.action.kind.value} done"))

    def _rescue(self, job: Job, ctx: StepContext, in_flight: str | None = None) -> str:
        """Undo what completed steps left behind, newest first; never raises. The step that failed (or was
        interrupted) is rescued too: it may have done half its work (a drain cordons, then times out), and
        rescues are idempotent (ports.py)."""
        taken: list[str] = []
        for step in reversed(job.steps):
            rescue = RESCUES.get(step)
            if rescue is None or (step not in job.done and step != in_flight) or rescue in job.done:
                continue
            intent = self.journal.intent(self.run_id, job.action.node, rescue, "rescue")
            try:
                summary = self.runner.rescue(step, ctx)
            except Exception as exc:
                self.journal.result(intent, "failed", self.journal.redact(str(exc)))
                taken.append(f"{rescue} FAILED ({exc})")
                continue
            self.journal.result(intent, "rescued", summary)
            job.done.add(rescue)
            taken.append(rescue)
        return ", ".join(taken)

    def _reprovision(self, job: Job, ctx: StepContext) -> None:
        name = job.action.node
        timeout = float(self.region.policy.timeouts.reprovision)
        if job.reinstall_issued and job.reinstall_marker:
            # A previous run's BMC call was accepted: never issue another; wait for it to show.
            ctx.say("re-install already issued by an earlier run; waiting for the node to come back")
            intent = self.journal.intent(self.run_id, name, REINSTALL_STEP, f"marker={job.reinstall_marker}")
            if not self.runner.reinstall_happened(ctx, job.reinstall_marker, wait=timeout):
                self.journal.result(intent, "failed", "issued re-install never showed")
                raise PermanentError(
                    f"{name}: the re-install issued by an earlier run never completed (host key unchanged "
                    f"after {int(timeout)} s)",
                    hint=f"check the console through the BMC; then `rollout reimage {name}`",
                )
            self.journal.result(intent, "observed", "re-install observed (host key changed)")
            job.reinstall_issued = False
            return
        if job.open_step == REINSTALL_STEP and job.reinstall_marker:
            # Killed between the intent and the BMC's acceptance: it may or may not have happened.
            ctx.say("previous run was interrupted while issuing the re-install; checking whether it happened")
            if self.runner.reinstall_happened(ctx, job.reinstall_marker, wait=timeout):
                intent = self.journal.intent(self.run_id, name, REINSTALL_STEP, f"marker={job.reinstall_marker}")
                self.journal.result(intent, "observed", "re-install observed (host key changed)")
                job.open_step = None
                return
        marker = self.runner.reinstall_marker(ctx)
        ctx.extra["marker"] = marker
        intent = self.journal.intent(self.run_id, name, REINSTALL_STEP, f"marker={marker}")
        summary = self.runner.run(REINSTALL_STEP, ctx)
        self.journal.result(intent, "ok", summary)
