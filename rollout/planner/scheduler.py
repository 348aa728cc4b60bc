"""Failure-domain-aware rollout scheduler: which nodes move now, and why the others wait.

The scheduler is a pure function of (work items, policy, GPU totals, a `Snapshot` of the dynamic state).
It performs no I/O and reads no clock (`Snapshot.now` is passed in), so the executor and the benchmark
simulator (`bench/sim`) drive the very same code, the latter with a virtual clock.

Model. Every work item is one node and one action. A node's life, as the scheduler sees it:

    pending --start--> in-flight/PREPARING (precheck, cordon, drain, vGPU evacuation; OSDs still up)
            --executor--> in-flight/READY (drained, parked at the storage gate)
            --admit--> in-flight/PROVISIONING (noout set, OSDs down, holds a provisioning slot)
            --executor--> in-flight/RETURNING (slot released: boot, join, configure, verify, unfence)
            --executor--> done | failed --rescue--> quarantined
    pending --start--> in-flight/CONFIGURING (non-disruptive `configure`: site.yml only) --> done

Invariants (each checked by the hypothesis tests in tests/unit/test_scheduler_properties.py):
- FD: nodes whose OSDs are down (stage PROVISIONING or RETURNING, in-flight or failed-unrescued) all
  belong to ONE failure domain, the open domain. A domain is opened only when no other domain has OSDs
  down, Ceph reports every PG active+clean and `ok-to-stop` agrees for a node of it; it is closed when it
  has nothing left to do, no OSDs down, and Ceph is active+clean again.
- Unavailable: in-flight + failed (not yet rescued) nodes never exceed `policy.max_unavailable`.
  Quarantined nodes were rescued: they stop counting here but count toward `max_failures` (below).
- Provisioning: nodes in PROVISIONING that need a slot never exceed `policy.provisioning_concurrency`;
  a node whose reprovision finished (RETURNING) has released its slot while it still configures.
- GPU floor: for every GPU model, total - (in-flight + failed + quarantined-out-of-service nodes of that
  model) never drops below `policy.gpu_floor(model)`. A quarantined node counts as out of service unless
  its rescue put it back (`NodeState.in_service`, or by default: it failed before its OSDs went down, so
  the rescue was an uncordon). Counting every quarantined GPU host as lost stalled 1 % of the B6 runs at
  3x faults for no reason: stuck drains are rescued into service.
- Halt: once failed + quarantined >= `policy.max_failures`, nothing new starts or is admitted.
- Determinism: the same inputs give the same Decision (orders are total, no set iteration leaks out).

Decisions (why they are so):
- `configure` (non-disruptive) is not FD-gated (it never takes OSDs down) but it does count toward
  max_unavailable and the GPU floor, because site.yml may restart kubelet, OVS and the vGPU manager.
- Domain order: natural name order (r2 before r10), except that a domain with OSDs down (adopted on
  resume) or with drained nodes waiting comes first. With one domain disrupted at a time the domains'
  disrupted windows are disjoint, so their order barely changes the makespan; a stable, readable order
  is worth more to operators. Within a domain, GPU nodes start first (vGPU evacuation makes them the
  longest jobs: longest-processing-time-first shortens the domain's span), then by name.
- Start priority: the open domain, then pre-draining the next domain, then `configure` items (they fill the
  budget the disruptive path leaves; the disruptive path is the critical one).
- Pre-draining: once every node of the open domain has started and budget is left, nodes of the NEXT
  domain are started too (drain/evacuation is a Kubernetes matter, not a Ceph one); they park READY and
  are admitted the moment the open domain closes. This hides drain time inside Ceph's recovery wait.
- Permanently blocked nodes (GPU floor with nothing in flight of that model that could restore capacity)
  are skipped with that reason and do not keep their domain open; `Decision.stalled` reports when
  nothing can move without an outside change.
- ok-to-stop is data: `Snapshot.ok_to_stop[node]` is Ceph's answer for stopping that node's OSDs in
  addition to those already down. A READY node with no answer is listed in `Decision.probe_ok_to_stop`
  so that the executor asks Ceph and decides again. The executor re-checks it right before fencing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from rollout.model.plan import Plan
from rollout.model.region import Policy, Region


class Status(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in-flight"
    DONE = "done"
    FAILED = "failed"  # failed, rescue not finished yet: still unavailable, OSDs possibly down
    QUARANTINED = "quarantined"  # failed and rescued: left alone for the rest of the rollout


class Stage(StrEnum):
    NONE = "none"
    PREPARING = "preparing"
    READY = "ready"
    PROVISIONING = "provisioning"
    RETURNING = "returning"
    CONFIGURING = "configuring"


_OSDS_DOWN_STAGES = frozenset({Stage.PROVISIONING, Stage.RETURNING})
_UNAVAILABLE = frozenset({Status.IN_FLIGHT, Status.FAILED})
_OUT_OF_SERVICE = frozenset({Status.IN_FLIGHT, Status.FAILED, Status.QUARANTINED})


@dataclass(frozen=True)
class WorkItem:
    """One node the rollout has to act on."""

    node: str
    failure_domain: str
    gpu_model: str | None = None
    disruptive: bool = True  # takes the node's OSDs down (re-image, migrate); False for configure
    needs_provisioning: bool = True  # needs a PXE/Ironic slot (not virtual-media hosts, not configure)


@dataclass(frozen=True)
class NodeState:
    status: Status = Status.PENDING
    stage: Stage = Stage.NONE  # for failed/quarantined nodes: the stage the failure happened in
    reason: str = ""  # failure / quarantine reason (informational)
    # Quarantined nodes only: did the rescue put the host back in service? None = derive from the stage.
    in_service: bool | None = None

    @property
    def osds_down(self) -> bool:
        return self.status in _UNAVAILABLE and self.stage in _OSDS_DOWN_STAGES

    @property
    def rescued_into_service(self) -> bool:
        """A node quarantined before its OSDs went down (stuck drain, refused ok-to-stop) was rescued by an
        uncordon and serves again; any later failure leaves it out unless the executor saw it back."""
        if self.in_service is not None:
            return self.in_service
        return self.stage in (Stage.PREPARING, Stage.READY)


PENDING = NodeState()


@dataclass(frozen=True)
class Snapshot:
    """The dynamic state the scheduler decides from; nodes missing from `states` are pending."""

    states: Mapping[str, NodeState]
    open_domain: str | None = None
    ceph_clean: bool = True  # every PG active+clean (PG states, not overall HEALTH_OK)
    ok_to_stop: Mapping[str, bool] | None = None  # node -> Ceph's answer; missing = not probed yet
    now: float = 0.0


@dataclass(frozen=True)
class Verdict:
    node: str
    reason: str


@dataclass(frozen=True)
class Decision:
    start: tuple[Verdict, ...]  # pending -> in flight now
    admit: tuple[Verdict, ...]  # READY -> fence and take OSDs down now
    skipped: tuple[Verdict, ...]  # pending or READY nodes left where they are, with why
    open_domain: str | None  # the domain open after this decision (persist it)
    closed_domain: str | None  # the domain this decision closed, if any
    halt: str | None  # set when the rollout must stop starting work
    finished: bool  # every node done or quarantined and no domain left open
    stalled: bool  # nothing in flight, nothing moves, not finished: needs an outside change
    probe_ok_to_stop: tuple[str, ...]  # READY nodes that need an ok-to-stop answer
    now: float
    in_flight: int  # unavailable nodes (in flight + failed-unrescued) after this decision's starts
    provisioning: int  # slots in use before this decision's admissions
    failures: int


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting r2 before r10; total over strings."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", name) if p)


class Scheduler:
    """Precomputes the static order once; `decide` is then a pure function of the snapshot."""

    def __init__(self, items: Sequence[WorkItem], policy: Policy, gpu_totals: Mapping[str, int],
                 domain_order: Sequence[str] | None = None) -> None:
        """`domain_order` (e.g. `Plan.domain_order`) overrides the natural name order; domains it does not
        list follow in natural order."""
        names = [i.node for i in items]
        if len(set(names)) != len(names):
            raise ValueError("work items must name each node once")
        self.policy = policy
        self.gpu_totals = dict(gpu_totals)
        # Longest jobs first inside a domain (GPU nodes add a vGPU evacuation), then by name.
        self.items: tuple[WorkItem, ...] = tuple(
            sorted(items, key=lambda i: (i.gpu_model is None, natural_key(i.node)))
        )
        self.by_name = {i.node: i for i in self.items}
        given = [d for d in dict.fromkeys(domain_order or ())]
        rest = sorted({i.failure_domain for i in self.items} - set(given), key=natural_key)
        self.domains: tuple[str, ...] = tuple(given + rest)
        self._rank = {d: n for n, d in enumerate(self.domains)}

    def decide(self, snap: Snapshot, *, explain: bool = True) -> Decision:
        """Decide what moves now. `explain=False` omits skip reasons of far-away nodes (hot loops only);
        starts, admits, domains and halts are identical either way."""
        pol = self.policy
        states = snap.states
        ok = snap.ok_to_stop or {}

        unavailable = 0
        failures = 0
        prov_used = 0
        gpu_out: dict[str, int] = {}
        gpu_busy: dict[str, int] = {}  # in flight or failed-unrescued: capacity that will come back
        down_domains: set[str] = set()
        # Per domain: work that keeps it open (pending, preparing, ready, OSDs down).
        pending_by_domain: dict[str, list[WorkItem]]
        ready_by_domain: dict[str, list[WorkItem]] = {}
        active_in_domain: dict[str, int] = {}
        pending_configure: list[WorkItem] = []
        all_terminal = True

        # NOTE: this loop is the hot path at 1,000+ nodes (B3: one pass per event); keep it flat.
        pending_by_domain = {d: [] for d in self.domains}
        done, quarantined, pending = Status.DONE, Status.QUARANTINED, Status.PENDING
        for item in self.items:
            st = states.get(item.node)
            if st is None or st.status is pending:
                all_terminal = False
                if item.disruptive:
                    pending_by_domain[item.failure_domain].append(item)
                else:
                    pending_configure.append(item)
                continue
            s = st.status
            if s is done:
                continue
            model = item.gpu_model
            if s is quarantined:
                failures += 1
                if model and not st.rescued_into_service:
                    gpu_out[model] = gpu_out.get(model, 0) + 1
                continue
            # In flight or failed-unrescued: unavailable, out of service, keeps its domain busy.
            all_terminal = False
            unavailable += 1
            stage = st.stage
            if stage in _OSDS_DOWN_STAGES:
                down_domains.add(item.failure_domain)
                if stage is Stage.PROVISIONING and item.needs_provisioning:
                    prov_used += 1
            if model:
                gpu_busy[model] = gpu_busy.get(model, 0) + 1
                gpu_out[model] = gpu_out.get(model, 0) + 1
            if item.disruptive:
                active_in_domain[item.failure_domain] = active_in_domain.get(item.failure_domain, 0) + 1
            if s is Status.FAILED:
                failures += 1
            elif stage is Stage.READY:
                ready_by_domain.setdefault(item.failure_domain, []).append(item)

        def gpu_room(model: str | None) -> int:
            if model is None:
                return 1 << 30
            return self.gpu_totals.get(model, 0) - gpu_out.get(model, 0) - pol.gpu_floor(model)

        def gpu_reason(model: str) -> str:
            in_service = self.gpu_totals.get(model, 0) - gpu_out.get(model, 0)
            return f"GPU floor {model}: {in_service} in service, floor {pol.gpu_floor(model)}"

        def permanently_blocked(item: WorkItem) -> bool:
            # Capacity can only come back from nodes of the same model still in flight.
            return item.gpu_model is not None and gpu_room(item.gpu_model) <= 0 and not gpu_busy.get(
                item.gpu_model, 0
            )

        def has_work(domain: str) -> bool:
            if active_in_domain.get(domain, 0):
                return True
            return any(not permanently_blocked(i) for i in pending_by_domain.get(domain, ()))

        start: list[Verdict] = []
        admit: list[Verdict] = []
        skipped: list[Verdict] = []
        probe: list[str] = []
        closed: str | None = None
        open_domain = snap.open_domain

        def skip(node: str, reason: str) -> None:
            skipped.append(Verdict(node, reason))

        def decision(halt: str | None, finished: bool, stalled: bool) -> Decision:
            return Decision(
                start=tuple(start), admit=tuple(admit), skipped=tuple(skipped), open_domain=open_domain,
                closed_domain=closed, halt=halt, finished=finished, stalled=stalled,
                probe_ok_to_stop=tuple(probe), now=snap.now, in_flight=unavailable, provisioning=prov_used,
                failures=failures,
            )

        if len(down_domains) > 1:
            # Only an outside actor (or a bug) can get here; refuse to add to it.
            doms = ", ".join(sorted(down_domains, key=natural_key))
            open_domain = snap.open_domain
            return decision(f"failure domains {doms} have OSDs down at once; refusing to go on", False, False)

        # --- domains: adopt, close, open -------------------------------------------------------------
        if down_domains:
            # NOTE: on resume the journal may have lost the open domain; the observed OSDs win.
            open_domain = next(iter(down_domains))
        if open_domain is not None and not has_work(open_domain) and snap.ceph_clean:
            closed, open_domain = open_domain, None
        halted = failures >= pol.max_failures
        halt = f"{failures} failures >= max_failures {pol.max_failures}" if halted else None

        remaining = [d for d in self.domains if d != open_domain and has_work(d)]
        # Drained nodes waiting (or a resumed half-done domain) go first; otherwise natural order.
        remaining.sort(key=lambda d: (d not in ready_by_domain, self._rank[d]))
        nxt = remaining[0] if remaining else None

        opens = open_domain is None and nxt is not None and not halted and snap.ceph_clean
        if opens and nxt is not None and any(ok.get(i.node) for i in ready_by_domain.get(nxt, ())):
            open_domain, nxt = nxt, (remaining[1] if len(remaining) > 1 else None)

        if all_terminal and open_domain is None:
            return decision(halt, True, False)

        # --- admissions: READY -> OSDs down ----------------------------------------------------------
        prov_free = pol.provisioning_concurrency - prov_used
        for domain in sorted(ready_by_domain, key=self._rank.__getitem__):
            for item in ready_by_domain[domain]:
                if halted:
                    skipped.append(Verdict(item.node, f"rollout halted: {halt}"))
                elif domain != open_domain:
                    skip(item.node, self._wait_reason(domain, open_domain, snap.ceph_clean))
                elif item.node not in ok:
                    probe.append(item.node)
                    skipped.append(Verdict(item.node, "awaiting `ceph osd ok-to-stop` answer"))
                elif not ok[item.node]:
                    skip(item.node, "ceph osd ok-to-stop refuses: PGs would drop below min_size")
                elif item.needs_provisioning and prov_free <= 0:
                    skipped.append(Verdict(
                        item.node,
                        f"provisioning slots full: {pol.provisioning_concurrency} of "
                        f"{pol.provisioning_concurrency} in use",
                    ))
                else:
                    if item.needs_provisioning:
                        prov_free -= 1
                    admit.append(Verdict(item.node, f"{domain} is the open domain, ok-to-stop agrees"))

        # --- starts: pending -> in flight -------------------------------------------------------------
        in_flight_before = unavailable
        budget = pol.max_unavailable - unavailable
        tiers: list[tuple[list[WorkItem], str]] = []
        first = open_domain if open_domain is not None else nxt
        if first is not None:
            tiers.append((pending_by_domain.get(first, []), f"{first} is the current failure domain"))
        if open_domain is not None and nxt is not None:
            tiers.append((pending_by_domain.get(nxt, []), f"pre-drain: {nxt} is the next failure domain"))
        tiers.append((pending_configure, "configure is not disruptive to Ceph (not failure-domain gated)"))
        considered: set[str] = set()
        full = ""
        for items, why in tiers:
            for item in items:
                considered.add(item.node)
                if halted:
                    skipped.append(Verdict(item.node, f"rollout halted: {halt}"))
                elif item.gpu_model is not None and gpu_room(item.gpu_model) <= 0:
                    tail = "; nothing in flight can restore it" if permanently_blocked(item) else ""
                    skipped.append(Verdict(item.node, gpu_reason(item.gpu_model) + tail))
                elif budget <= 0:
                    # `unavailable` no longer changes once the budget is spent: one string for all.
                    full = full or f"max_unavailable {pol.max_unavailable} reached ({unavailable} out)"
                    skip(item.node, full)
                else:
                    budget -= 1
                    unavailable += 1
                    if item.gpu_model is not None:
                        gpu_out[item.gpu_model] = gpu_out.get(item.gpu_model, 0) + 1
                        gpu_busy[item.gpu_model] = gpu_busy.get(item.gpu_model, 0) + 1
                    start.append(Verdict(item.node, why))
        if explain:
            ahead = nxt if open_domain is None else open_domain
            for domain in self.domains:
                waiting = pending_by_domain.get(domain, ())
                if not waiting:
                    continue
                # One string per domain: at 10,000 nodes this loop dominates a decision.
                common = (f"rollout halted: {halt}" if halted
                          else self._wait_reason(domain, ahead, snap.ceph_clean))
                for item in waiting:
                    if item.node in considered:
                        continue
                    reason = common
                    if not halted and permanently_blocked(item):
                        reason = gpu_reason(item.gpu_model or "") + "; nothing in flight can restore it"
                    skipped.append(Verdict(item.node, reason))

        # Stalled: nothing moved, nothing in flight to wait for, no probe to answer, Ceph not recovering.
        stalled = not (start or admit) and in_flight_before == 0 and not probe and snap.ceph_clean
        return decision(halt, False, stalled)

    @staticmethod
    def _wait_reason(domain: str, ahead: str | None, clean: bool) -> str:
        if ahead is None:
            if clean:
                return f"{domain} waits for ok-to-stop"
            return f"{domain} waits for Ceph to be active+clean"
        if ahead == domain:
            return f"{domain} waits for Ceph to be active+clean before it opens"
        return f"{domain} waits for {ahead} to finish and be active+clean (one failure domain at a time)"


def work_items(plan: Plan, region: Region) -> list[WorkItem]:
    """The scheduler's input for a plan's changes. A node needs a provisioning slot when its OS disk is
    rewritten through PXE/Ironic; virtual-media hosts are outside BMO's PROVISIONING_LIMIT."""
    items = []
    for action in plan.changes:
        node = region.node(action.node)
        items.append(WorkItem(
            node=action.node,
            failure_domain=action.failure_domain,
            gpu_model=action.gpu_model,
            disruptive=action.kind.disrupts_node,
            needs_provisioning=action.kind.rewrites_os_disk and node.bmc.driver != "redfish-virtualmedia",
        ))
    return items


def gpu_totals(region: Region) -> dict[str, int]:
    """GPU hosts per model in the whole region (the floor is about the fleet, not about the plan)."""
    totals: dict[str, int] = {}
    for node in region.nodes:
        if node.gpu_model:
            totals[node.gpu_model] = totals.get(node.gpu_model, 0) + 1
    return totals
