"""Use cases `apply` and `reimage`: lock, observe, plan, confirm, execute, journal.

Order of operations (each before the next):
1. load + validate the region (nothing touched on bad input);
2. take the region lock (a live holder refuses with exit 3; a dead one on this host is taken over
   and reported);
3. observe (read-only) and plan; merge unfinished operations from the journal (resume wins: a
   re-image that was interrupted is finished, never restarted);
4. refuse a saved plan whose observation changed; ask for confirmation (the CLI decides how);
5. run the engine; end the run in the journal with its outcome; release the lock.
"""

from __future__ import annotations

import functools
import shlex
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rollout.app.context import Context
from rollout.app.migrating import CapiWiring, LeaseKeeper, bundle_ref, capi_steps
from rollout.app.observing import observe_region
from rollout.app.planning import content_revision, node_revisions, resolve_limit
from rollout.app.wiring import ansible_runner, ceph_admin, require_reachable
from rollout.backends.ceph import CephAdmin
from rollout.backends.orphans import find_marked, stop_orphans
from rollout.backends.redfish import BmcCredentials, RedfishBmc, RedfishTarget
from rollout.errors import ConfigError, PreflightError, SafetyRefused
from rollout.executor.engine import CrashPoints, Engine, Outcome, Progress
from rollout.executor.ports import StepRunner
from rollout.executor.resume import (
    PLAN_NODE,
    Unfinished,
    pending_plan,
    plan_note,
    quarantined_operations,
    unfinished_operations,
)
from rollout.executor.steps_ansible import AnsibleSteps
from rollout.executor.steps_router import StepRouter
from rollout.inventory import RegionSource, load_region
from rollout.journal import Journal, new_run_id
from rollout.lock import LockStale, RegionLock
from rollout.model.observation import Observation
from rollout.model.plan import Action, ActionKind, Plan
from rollout.model.region import Method, Node
from rollout.planner.plan import PlanRequest, make_plan, steps_for
from rollout.render.plan_json import plan_from_json


@dataclass(frozen=True)
class ApplyRequest:
    region: str
    limit: str | None = None
    reimage: frozenset[str] = frozenset()
    retry: frozenset[str] = frozenset()
    plan_file: Path | None = None
    force_configure: bool = False
    reason: str = ""
    command: str = ""
    method_override: Method | None = None  # `rollout migrate --to`


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    outcome: Outcome | None  # None when nothing had to be done or the operator declined
    run_id: str
    artifacts_dir: Path
    declined: bool = False


class CephGateAdapter:
    """The engine's view of Ceph, over CephAdmin."""

    def __init__(self, ceph: CephAdmin) -> None:
        self.ceph = ceph

    def all_active_clean(self) -> bool:
        return self.ceph.pg_summary().all_active_clean

    def ok_to_stop(self, node: Node) -> bool:
        osds = self.ceph.osds_of_host(node.name)
        return True if not osds else self.ceph.ok_to_stop(osds).ok


def bmc_factory(source: RegionSource) -> Callable[[Node], RedfishBmc]:
    def make(node: Node) -> RedfishBmc:
        creds = BmcCredentials.from_vault(source.secret("vault_bmc_credentials")[node.bmc.credentials])
        return RedfishBmc(RedfishTarget.from_spec(node.bmc), creds, node=node.name)

    return make


def merge_resume(plan: Plan, unfinished: dict[str, Unfinished],
                 pending: dict[str, tuple[str, str, str]] | None = None,
                 retries: dict[str, tuple[str, str]] | None = None, *, has_workload: bool = False) -> Plan:
    """Unfinished operations from the journal replace the fresh decision for their node; nodes of an
    interrupted run's accepted plan that never started are taken as that plan said; a retried quarantined
    node (`retries`: node -> (action, reason)) gets at least that action, even when it looks up to date."""
    actions = []
    pending = pending or {}
    retries = retries or {}
    for action in plan.actions:
        prior = unfinished.get(action.node)
        retry = retries.get(action.node)
        if prior is None and retry is not None and (
                action.kind is ActionKind.NONE or ActionKind(retry[0]).rewrites_os_disk):
            kind = ActionKind(retry[0])
            actions.append(replace(action, kind=kind, skip_reason=None, reason=retry[1],
                                   steps=steps_for(kind, Method(action.desired_method), has_workload),
                                   position=action.position or 999))
            continue
        if prior is None:
            carried = pending.get(action.node)
            if carried is not None and carried[0] != action.kind.value and ActionKind(carried[0]).rewrites_os_disk:
                kind = ActionKind(carried[0])
                actions.append(replace(action, kind=kind, skip_reason=None,
                                       reason=f"continue the plan of interrupted run {carried[2]}: {carried[1]}",
                                       steps=steps_for(kind, Method(action.desired_method), has_workload),
                                       position=action.position or 999))
            else:
                actions.append(action)
            continue
        done = [s for s in prior.steps if s in prior.done_steps]
        reason = (f"resume {prior.action} from run {prior.run_id} (done: {', '.join(done) or 'nothing'}); "
                  f"originally: {prior.reason}")
        actions.append(replace(action, kind=ActionKind(prior.action), reason=reason, skip_reason=None,
                               steps=prior.steps, position=action.position or 999))
    return replace(plan, actions=tuple(actions))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Session:
    """One apply/reimage invocation: owns the journal, lock and backends for its lifetime."""

    def __init__(self, ctx: Context, request: ApplyRequest, say: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.request = request
        self.say = say
        self.source = load_region(ctx.inventory_root, request.region)
        region = self.source.region
        require_reachable(region, "apply, reimage and migrate")
        desired = request.method_override or region.method
        if desired is not Method.ANSIBLE and not region.clusters.has_management:
            raise PreflightError(f"region {region.name} wants method {desired.value} but has no "
                                 "management cluster", hint="set clusters.management in region.yml")
        # With a management cluster the observation also comes from CAPI objects, the CAPI steps are
        # routed there, and a Lease guards the region across machines (rollout.app.migrating).
        self.capi: CapiWiring | None = CapiWiring.connect(region) if region.clusters.has_management else None
        self.run_id = new_run_id()
        self.journal = Journal.open(region.name, ctx.state_dir, secrets=self.source.secret_values())
        self.lock = RegionLock(self.journal)
        self.holder = None
        self.ansible, self.artifacts = ansible_runner(ctx, self.source, self.run_id)
        self.ceph = ceph_admin(self.source, self.ansible)
        self.lease: LeaseKeeper | None = None

    def __enter__(self) -> Session:
        try:
            self.holder = self.lock.acquire(self.run_id)
        except LockStale as exc:
            self.say(f"Taking over a stale lock: {exc.message}")
            self.holder = self.lock.acquire(self.run_id, take_over_stale=True)
        if self.capi is not None:
            try:
                self.lease = LeaseKeeper(self.capi.lease(f"{socket.gethostname()}/{self.run_id}")).start()
            except BaseException:
                self.lock.release(self.holder.lock_id)
                self.holder = None
                raise
        try:
            self.stop_orphans()
        except BaseException:
            self.__exit__()
            raise
        return self

    def stop_orphans(self) -> None:
        """Stop Ansible runs a killed predecessor left behind, before observing (they would race the
        resumed steps on the same node). Safe only under the region lock, which we hold here."""
        scope = self.ansible.settings.scope
        orphans = find_marked(scope) if scope is not None else []
        if not orphans:
            return
        by_run = sorted({f"{p.run_id}/{p.step}" for p in orphans})
        self.say(f"Stopping {len(orphans)} process(es) left by a killed run ({', '.join(by_run)})...")
        stop_orphans(orphans)
        self.journal.note(self.run_id, PLAN_NODE, "orphans", "stopped",
                          "; ".join(p.describe() for p in orphans))

    def __exit__(self, *exc: object) -> None:
        if self.lease is not None:
            self.lease.stop()
        if self.holder is not None:
            self.lock.release(self.holder.lock_id)
        self.journal.close()

    @functools.cached_property
    def revisions(self) -> dict[str, str]:
        """Per-node desired config revision; hashes every file of roles/ and playbooks/, so once per run."""
        return node_revisions(self.source, content_revision())

    def plan(self) -> tuple[Plan, Observation, dict[str, Unfinished]]:
        region = self.source.region
        self.say(f"Observing region {region.name} (SSH markers, Ceph)...")
        observation = observe_region(self.source, self.ansible, self.ceph, self.journal)
        if self.capi is not None:
            observation = self.capi.observe(observation)
        # --retry NODE clears its quarantine for this plan.
        if self.request.retry:
            observation = replace(observation, nodes=tuple(
                replace(n, quarantined=None) if n.name in self.request.retry else n for n in observation.nodes))
        request = PlanRequest(
            limit=resolve_limit(self.source, self.request.limit),
            limit_pattern=self.request.limit,
            reimage=self.request.reimage,
            desired_revisions=self.revisions,
            method_override=self.request.method_override,
            force_configure=self.request.force_configure,
        )
        plan = make_plan(region, observation, request, _now())
        transitions = self.journal.transitions()
        unfinished = unfinished_operations(transitions)
        pending = pending_plan(transitions)
        # `--retry NODE` takes the quarantined operation again when it had not re-installed the node yet
        # (a re-image refused at precheck, e.g. by the BMC, is still owed); otherwise the plan decides.
        retries: dict[str, tuple[str, str]] = {}
        for node, q in quarantined_operations(transitions).items():
            if node not in self.request.retry or node in unfinished or node in pending or not q.action:
                continue
            again = (ActionKind(q.action) if ActionKind(q.action).rewrites_os_disk and not q.reinstall_issued
                     else ActionKind.CONFIGURE)
            retries[node] = (again.value, f"retry of the {q.action} quarantined in run {q.run_id}: {q.reason}")
        if request.limit is not None:
            unfinished = {k: v for k, v in unfinished.items() if k in request.limit}
            pending = {k: v for k, v in pending.items() if k in request.limit}
            retries = {k: v for k, v in retries.items() if k in request.limit}
        plan = merge_resume(plan, unfinished, pending, retries, has_workload=region.clusters.has_workload)
        if self.request.plan_file is not None:
            saved = plan_from_json(self.request.plan_file.read_text(), str(self.request.plan_file))
            if saved.region != region.name:
                raise ConfigError(f"{self.request.plan_file}: plan is for region {saved.region}, not {region.name}")
            if saved.observation_digest != plan.observation_digest:
                raise SafetyRefused(
                    f"the saved plan {self.request.plan_file} was made from an observation that no longer holds "
                    f"(digest {saved.observation_digest}, now {plan.observation_digest})",
                    hint=f"make a new plan: `rollout plan --region {region.name}`",
                )
            wanted = {a.node: a.kind for a in saved.changes}
            plan = replace(plan, actions=tuple(
                a if wanted.get(a.node) == a.kind or a.node in unfinished else replace(
                    a, kind=ActionKind.NONE, skip_reason="not in the saved plan", steps=(), position=0)
                for a in plan.actions))
        if self.request.reimage:
            self.refuse_unless_ceph_allows(plan, unfinished)
        if plan.refusals:
            raise SafetyRefused("the plan is refused: " + "; ".join(plan.refusals),
                                hint="fix region.yml, then plan again")
        return plan, observation, unfinished

    def refuse_unless_ceph_allows(self, plan: Plan, unfinished: dict[str, Unfinished]) -> None:
        """`rollout reimage NODE` is the on-call path: when Ceph says no *now*, refuse at once with the numbers
        (exit 3, nothing touched) instead of waiting at the storage gate for `timeouts.ceph_clean` as a
        region rollout does. A resumed re-image is past this question and is not asked again."""
        for action in plan.changes:
            if action.node not in self.request.reimage or action.node in unfinished or not action.kind.rewrites_os_disk:
                continue
            osds = self.ceph.osds_of_host(action.node)
            if not osds:
                continue
            verdict = self.ceph.ok_to_stop(osds)
            if verdict.ok:
                continue
            facts = [f"now {self.ceph.pg_summary().describe()}"]
            tight = self.ceph.osd_dump().pools_without_headroom
            if tight:
                facts.append(", ".join(p.describe() for p in tight) + " cannot lose a single copy")
            region = self.source.region.name
            raise SafetyRefused(
                f"Ceph says the OSDs of {action.node} cannot stop now: {verdict.describe()}; " + "; ".join(facts)
                + ". Nothing was changed",
                hint=("it becomes safe when every PG stays active without this host: wait for `ceph pg stat` to "
                      "show all PGs active+clean and bring back any other host that is down; a pool whose "
                      "min_size equals its size never allows it (a storage decision: `ceph osd pool ls detail`). "
                      f"Then: rollout reimage {action.node} --region {region}"),
            )

    def execute(self, plan: Plan, unfinished: dict[str, Unfinished], progress: Progress,
                stop: threading.Event) -> Outcome:
        region = self.source.region
        command = self.request.command or shlex.join(["rollout", *sys.argv[1:]])
        self.journal.start_run(command, run_id=self.run_id)
        if self.request.reason:
            self.journal.note(self.run_id, PLAN_NODE, "reason", "given", self.request.reason)
        self.journal.note(self.run_id, PLAN_NODE, "plan", "accepted",
                          plan_note((a.node, a.kind.value, a.reason) for a in plan.changes))
        steps = AnsibleSteps(region=region, ansible=self.ansible, ceph=self.ceph, bmc_for=bmc_factory(self.source),
                             revisions=self.revisions,
                             known_hosts=self.ansible.settings.known_hosts)
        runner: StepRunner = steps
        if self.capi is not None:
            capi = capi_steps(self.source, self.capi, self.ansible, self.ceph,
                              self.revisions, bundle_ref(self.source))
            runner = StepRouter(steps, capi)
        engine = Engine(region=region, actions=plan.actions, runner=runner, ceph=CephGateAdapter(self.ceph),
                        journal=self.journal, run_id=self.run_id, progress=progress, unfinished=unfinished,
                        stop=stop, crash=CrashPoints.from_env(), poll=2.0)
        outcome = engine.run()
        if outcome.complete:
            result, why = "ok", f"{len(outcome.done)} node(s) done"
        elif outcome.interrupted:
            result, why = "interrupted", "stopped by the operator"
        else:
            parts = []
            if outcome.quarantined:
                parts.append("quarantined: " + ", ".join(n for n, _ in outcome.quarantined))
            if outcome.halted:
                parts.append(f"halted: {outcome.halted}")
            if outcome.stalled:
                parts.append(f"stalled: {outcome.stalled}")
            result, why = "partial", "; ".join(parts)
        self.journal.end_run(self.run_id, result, why)
        return outcome


def selected_changes(plan: Plan) -> list[Action]:
    return list(plan.changes)
