"""Event loop of the rollout simulation: node phases, provisioning slots, a Ceph model, metrics.

Node life in the engine (the scheduler's stages, see rollout/planner/scheduler.py):
    start -> PREPARING (trace.prep) -> READY -> admit -> PROVISIONING (trace.prov, holds a slot)
          -> RETURNING (trace.ret_boot, then, for lockstep strategies once the whole batch booted,
          trace.ret_cfg) -> DONE.
    OSDs are down from admission to DONE; then the node's PGs recover for trace.rec.

Ceph model (rack failure domain, size 3 / min_size 2, one replica per rack):
- `disrupted` nodes = OSDs down, or back but their PGs not yet recovered.
- active+clean <=> no disrupted node.
- ok-to-stop(node) <=> every disrupted node is in the node's failure domain (a second rack down would drop
  PGs below min_size). A host that never returns stays down until its data is backfilled elsewhere.

Fault handling depends on who runs the rollout (`fault_mode`):
- "quarantine" (rollout): a stuck drain fails at the drain timeout, a dead BMC at the BMC timeout (before
  any OSD went down), a host that does not return at the SSH timeout; each is rescued and quarantined.
- "operator" (anchors): the stuck drain / dead BMC holds its slot or batch until an operator or a BMC reset
  frees it; a host that does not return stops the play until an operator removes it.

Metrics: FD violations = admissions that take OSDs down while another domain has OSDs down; degraded
admissions = while another domain is down OR still recovering; GPU floor violations = starts that leave a
model below its floor (physically out of service: in flight or dead). Invariant: deterministic for
(fleet, trace, strategy); events at equal times are processed in insertion order.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from bench.sim.fleet import OPERATOR_RESPONSE, PROVISIONING_LIMIT, Fleet, Trace
from rollout.planner.scheduler import NodeState, Stage, Status

PREP_DONE, PROV_DONE, BOOTED, RET_DONE, FAIL, RECOVERED, BACKFILLED = range(7)

DRAIN_TIMEOUT = 900.0  # rollout's Timeouts.drain default
BMC_TIMEOUT = 120.0  # rollout's Timeouts.bmc default
SSH_TIMEOUT = 1800.0  # rollout's Timeouts.ssh default
ANSIBLE_DRAIN_GIVEUP = 360.0 * 3 + 30.0  # kubespray: 3 tries x 360 s timeout, 10 s retry delay

_PREPARING = NodeState(Status.IN_FLIGHT, Stage.PREPARING)
_READY = NodeState(Status.IN_FLIGHT, Stage.READY)
_PROVISIONING = NodeState(Status.IN_FLIGHT, Stage.PROVISIONING)
_RETURNING = NodeState(Status.IN_FLIGHT, Stage.RETURNING)
_DONE = NodeState(Status.DONE)


class Strategy(Protocol):
    name: str
    fault_mode: str  # "quarantine" | "operator"
    stuck_drain_delay: float  # operator mode: extra time a stuck drain costs
    lockstep_configure: bool  # booted nodes wait for the strategy's `configure` (Ansible batch plays)

    def step(self, sim: Engine) -> None: ...


@dataclass(frozen=True)
class Result:
    strategy: str
    makespan: float  # seconds until every node is done/quarantined and Ceph is active+clean; inf if stuck
    fd_violations: int
    degraded_admissions: int
    gpu_violations: int
    quarantined: int
    max_in_flight: int
    max_provisioning: int
    slot_queue_waits: int


class OkToStop(Mapping[str, bool]):
    """Ceph's `osd ok-to-stop` answer for every node, computed on demand from the engine's state."""

    def __init__(self, sim: Engine) -> None:
        self._sim = sim

    def __getitem__(self, name: str) -> bool:
        return self._sim.ok_to_stop(self._sim.index[name])

    def __contains__(self, name: object) -> bool:
        return name in self._sim.index

    def __iter__(self) -> Iterator[str]:
        return iter(self._sim.index)

    def __len__(self) -> int:
        return len(self._sim.index)


class Engine:
    def __init__(self, fleet: Fleet, trace: Trace, slots: int = PROVISIONING_LIMIT) -> None:
        self.fleet = fleet
        self.trace = trace
        self.slots = slots
        self.now = 0.0
        self.index = {n: i for i, n in enumerate(fleet.names)}
        self.domain = fleet.domain
        self.states: dict[str, NodeState] = {}
        self.ok_view = OkToStop(self)
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._slot_queue: deque[int] = deque()
        self.slots_used = 0
        # Ceph: per-domain counts of nodes with OSDs down and of disrupted (down or recovering) nodes.
        self._down: dict[str, int] = {}
        self._disrupted: dict[str, int] = {}
        self.total_down = 0
        self.total_disrupted = 0
        self._gpu_out: dict[str, int] = {}
        self._gpu_floor = dict(fleet.policy().gpu_capacity_floor)
        self._gpu_total = fleet.gpu_totals()
        self.in_flight = 0
        self.terminal = 0
        self.fault_mode = "operator"
        self.lockstep_configure = False
        self.booted: set[int] = set()
        self.stuck_drain_delay = 0.0
        self.fd_violations = 0
        self.degraded_admissions = 0
        self.gpu_violations = 0
        self.quarantined = 0
        self.max_in_flight = 0
        self.max_provisioning = 0
        self.slot_queue_waits = 0

    # --- queries for strategies ----------------------------------------------------------------------
    @property
    def ceph_clean(self) -> bool:
        return self.total_disrupted == 0

    def ok_to_stop(self, i: int) -> bool:
        return self.total_disrupted - self._disrupted.get(self.domain[i], 0) == 0

    def state(self, i: int) -> NodeState:
        return self.states.get(self.fleet.names[i], NodeState())

    def is_terminal(self, i: int) -> bool:
        return self.state(i).status in (Status.DONE, Status.QUARANTINED)

    # --- actions ----------------------------------------------------------------------------------------
    def start(self, name: str) -> None:
        i = self.index[name]
        assert name not in self.states, f"{name} started twice"
        self.states[name] = _PREPARING
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        g = self.fleet.gpu[i]
        if g:
            self._gpu_out[g] = self._gpu_out.get(g, 0) + 1
            if self._gpu_total[g] - self._gpu_out[g] < self._gpu_floor.get(g, 0):
                self.gpu_violations += 1
        t = self.trace
        if t.stuck_drain[i]:
            if self.fault_mode == "quarantine":
                self._push(DRAIN_TIMEOUT, FAIL, i)
                return
            self._push(float(t.prep[i]) + self.stuck_drain_delay, PREP_DONE, i)
            return
        self._push(float(t.prep[i]), PREP_DONE, i)

    def configure(self, name: str) -> None:
        """Lockstep strategies: let a booted node run its configure/join tasks."""
        i = self.index[name]
        self.booted.remove(i)
        self._push(float(self.trace.ret_cfg[i]), RET_DONE, i)

    def admit(self, name: str) -> None:
        i = self.index[name]
        assert self.states.get(name) is _READY, f"{name} admitted while {self.states.get(name)}"
        self.states[name] = _PROVISIONING  # parked for a slot counts as admitted for the strategy
        if self.slots_used >= self.slots:
            self.slot_queue_waits += 1
            self._slot_queue.append(i)
            return
        self._go_down(i)

    # --- internals --------------------------------------------------------------------------------------
    def _push(self, delay: float, kind: int, i: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (self.now + delay, self._seq, kind, i))

    def _go_down(self, i: int) -> None:
        d = self.domain[i]
        t = self.trace
        self.slots_used += 1
        self.max_provisioning = max(self.max_provisioning, self.slots_used)
        if t.bmc_persistent[i] and self.fault_mode == "quarantine":
            # The power cycle never happened: the OSDs are still up when the BMC timeout fires.
            self._push(BMC_TIMEOUT, FAIL, i)
            return
        if self.total_down - self._down.get(d, 0) > 0:
            self.fd_violations += 1
        if self.total_disrupted - self._disrupted.get(d, 0) > 0:
            self.degraded_admissions += 1
        self._down[d] = self._down.get(d, 0) + 1
        self.total_down += 1
        self._disrupted[d] = self._disrupted.get(d, 0) + 1
        self.total_disrupted += 1
        extra = float(t.bmc_extra[i] + t.pxe_extra[i])
        if t.bmc_persistent[i]:
            extra += 1200.0  # BMC reset, then the same path
        self._push(float(t.prov[i]) + extra, PROV_DONE, i)

    def _release_slot(self) -> None:
        self.slots_used -= 1
        if self._slot_queue:
            self._go_down(self._slot_queue.popleft())

    def _finish(self, i: int, state: NodeState) -> None:
        self.states[self.fleet.names[i]] = state
        self.in_flight -= 1
        self.terminal += 1
        g = self.fleet.gpu[i]
        if g and state is _DONE:
            self._gpu_out[g] -= 1

    def _handle(self, kind: int, i: int) -> None:
        name = self.fleet.names[i]
        d = self.domain[i]
        t = self.trace
        if kind == PREP_DONE:
            self.states[name] = _READY
        elif kind == PROV_DONE:
            self.states[name] = _RETURNING
            self._release_slot()
            if t.no_return[i]:
                delay = SSH_TIMEOUT if self.fault_mode == "quarantine" else SSH_TIMEOUT + OPERATOR_RESPONSE
                self._push(delay, FAIL, i)
            else:
                self._push(float(t.ret_boot[i]), BOOTED, i)
        elif kind == BOOTED:
            if self.lockstep_configure:
                self.booted.add(i)  # the batch play's next task waits for every host of the batch
            else:
                self._push(float(t.ret_cfg[i]), RET_DONE, i)
        elif kind == RET_DONE:
            self._finish(i, _DONE)
            self._down[d] -= 1
            self.total_down -= 1
            self._push(float(t.rec[i]), RECOVERED, i)
        elif kind == RECOVERED:
            self._disrupted[d] -= 1
            self.total_disrupted -= 1
        elif kind == BACKFILLED:  # the dead host's OSDs are out and its data lives elsewhere now
            self._down[d] -= 1
            self.total_down -= 1
            self._disrupted[d] -= 1
            self.total_disrupted -= 1
        elif kind == FAIL:
            st = self.states[name]
            self.quarantined += 1
            back = st.stage is not Stage.RETURNING  # only a host that never came back stays out of service
            self._finish(i, NodeState(Status.QUARANTINED, st.stage, "simulated fault", in_service=back))
            if st.stage is Stage.PROVISIONING:  # dead BMC: slot held until the timeout, OSDs never went down
                self._release_slot()
                g = self.fleet.gpu[i]
                if g:  # the host never powered off: it still serves
                    self._gpu_out[g] -= 1
            elif st.stage is Stage.RETURNING:
                # Dead host: out of service for good, OSDs down until its data is re-replicated.
                self._push(float(t.backfill[i]), BACKFILLED, i)
            else:
                g = self.fleet.gpu[i]
                if g:  # a stuck drain is rescued by uncordoning: the host is back in service
                    self._gpu_out[g] -= 1

    def run(self, strategy: Strategy) -> Result:
        self.fault_mode = strategy.fault_mode
        self.stuck_drain_delay = strategy.stuck_drain_delay
        self.lockstep_configure = strategy.lockstep_configure
        strategy.step(self)
        heap = self._heap
        while heap:
            t0 = heap[0][0]
            self.now = t0
            while heap and heap[0][0] == t0:
                _, _, kind, i = heapq.heappop(heap)
                self._handle(kind, i)
            strategy.step(self)
        complete = self.terminal == self.fleet.size and self.total_disrupted == 0
        return Result(
            strategy=strategy.name, makespan=self.now if complete else math.inf,
            fd_violations=self.fd_violations, degraded_admissions=self.degraded_admissions,
            gpu_violations=self.gpu_violations, quarantined=self.quarantined,
            max_in_flight=self.max_in_flight, max_provisioning=self.max_provisioning,
            slot_queue_waits=self.slot_queue_waits,
        )
