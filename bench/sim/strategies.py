"""Rollout strategies replayed by the engine: the anchors (a)-(d) and rollout's own scheduler (e).

(a) ceph-ansible `rolling_update.yml`: serial 1 in inventory order, wait for active+clean after each host.
(b) kubespray `serial: "20%"`: fixed batches in inventory order, failure-domain blind, no Ceph wait; the
    linear strategy runs each task on the whole batch, so the batch reboots only once every host drained,
    the post-install tasks (join, OVN/GRID, OSD activation) start once every host answered SSH, and the
    next batch starts only when the whole batch finished (barrier).
(c) Ansible with `serial` = one rack per batch: like (b) with racks as batches, plus an active+clean wait
    between racks.
(d) Cluster API MachineDeployment RollingUpdate, maxSurge 0 / maxUnavailable k, machines picked in a random
    (seeded) order, drains gated reactively by Rook's managed PDBs: a node whose OSDs may not stop (another
    rack disrupted) sits in drain and keeps its slot.
(e) rollout.planner.scheduler.Scheduler, called after every batch of simultaneous events with the engine's
    state as its Snapshot: the same code the executor calls, only the clock is virtual.

Invariant: strategies only read the engine's state and call start/admit; they never touch durations.
"""

from __future__ import annotations

import math

import numpy as np

from bench.sim.engine import ANSIBLE_DRAIN_GIVEUP, DRAIN_TIMEOUT, Engine, Strategy
from bench.sim.fleet import OPERATOR_RESPONSE, Fleet
from rollout.planner.scheduler import Scheduler, Snapshot, Stage, Status

CAPI_DRAIN_ALERT = 3600.0  # CAPI NodeDrainTimeout defaults to 0 (forever); an alert fires after ~1 h (MCO)


class SerialOne:
    """(a) one host at a time with an active+clean wait."""

    fault_mode = "operator"
    stuck_drain_delay = ANSIBLE_DRAIN_GIVEUP + OPERATOR_RESPONSE
    lockstep_configure = False  # one host per batch: nothing to wait for

    def __init__(self, fleet: Fleet) -> None:
        self.name = "(a) serial 1 + clean wait"
        self.names = fleet.names
        self.next = 0
        self.cur: int | None = None

    def step(self, sim: Engine) -> None:
        if self.cur is not None:
            st = sim.state(self.cur)
            if st.stage is Stage.READY and st.status is Status.IN_FLIGHT:
                sim.admit(self.names[self.cur])
            if not sim.is_terminal(self.cur):
                return
            self.cur = None
        if sim.ceph_clean and self.next < len(self.names):
            self.cur = self.next
            self.next += 1
            sim.start(self.names[self.cur])


class Batches:
    """(b) fixed-size batches, FD-blind; (c) rack batches with an active+clean wait between them."""

    fault_mode = "operator"
    stuck_drain_delay = ANSIBLE_DRAIN_GIVEUP + OPERATOR_RESPONSE
    lockstep_configure = True

    def __init__(self, name: str, batches: list[list[int]], names: tuple[str, ...], clean_wait: bool) -> None:
        self.name = name
        self.batches = batches
        self.names = names
        self.clean_wait = clean_wait
        self.b = -1
        self.admitted = True
        self.configured = True

    @classmethod
    def percent(cls, fleet: Fleet, share: float = 0.2) -> Batches:
        size = max(1, math.ceil(share * fleet.size))
        idx = list(range(fleet.size))
        return cls("(b) 20% batches, FD-blind", [idx[i:i + size] for i in range(0, fleet.size, size)],
                   fleet.names, clean_wait=False)

    @classmethod
    def racks(cls, fleet: Fleet) -> Batches:
        by: dict[str, list[int]] = {}
        for i, d in enumerate(fleet.domain):
            by.setdefault(d, []).append(i)
        return cls("(c) rack batches + clean wait", list(by.values()), fleet.names, clean_wait=True)

    def step(self, sim: Engine) -> None:
        if self.b >= 0:
            batch = self.batches[self.b]
            if not self.admitted:
                if any(sim.state(i).stage is Stage.PREPARING and sim.state(i).status is Status.IN_FLIGHT
                       for i in batch):
                    return
                self.admitted = True
                for i in batch:
                    st = sim.state(i)
                    if st.stage is Stage.READY and st.status is Status.IN_FLIGHT:
                        sim.admit(self.names[i])
            if not self.configured:
                # Linear strategy: the post-install tasks start once every host answered (or was removed).
                if any(sim.state(i).status is Status.IN_FLIGHT and i not in sim.booted for i in batch):
                    return
                self.configured = True
                for i in batch:
                    if i in sim.booted:
                        sim.configure(self.names[i])
            if not all(sim.is_terminal(i) for i in batch):
                return
        if self.b + 1 >= len(self.batches) or (self.clean_wait and not sim.ceph_clean):
            return
        self.b += 1
        self.admitted = False
        self.configured = False
        for i in self.batches[self.b]:
            sim.start(self.names[i])


class MachineDeployment:
    """(d) maxUnavailable k with reactive failure-domain gating (Rook PDBs); blocked drains hold slots."""

    fault_mode = "operator"
    stuck_drain_delay = CAPI_DRAIN_ALERT + OPERATOR_RESPONSE
    lockstep_configure = False  # cloud-init runs on each node independently

    def __init__(self, fleet: Fleet, k: int, seed: int) -> None:
        self.name = f"(d) MD maxUnavailable={k} + PDB gating"
        self.k = k
        self.names = fleet.names
        self.order = [int(i) for i in np.random.default_rng(seed + 7919).permutation(fleet.size)]
        self.next = 0
        self.mine: list[int] = []

    def step(self, sim: Engine) -> None:
        self.mine = [i for i in self.mine if not sim.is_terminal(i)]
        for i in self.mine:
            st = sim.state(i)
            if st.stage is Stage.READY and st.status is Status.IN_FLIGHT and sim.ok_to_stop(i):
                sim.admit(self.names[i])
        while len(self.mine) < self.k and self.next < len(self.order):
            i = self.order[self.next]
            self.next += 1
            self.mine.append(i)
            sim.start(self.names[i])


class Rollout:
    """(e) rollout's own scheduler on the virtual clock."""

    fault_mode = "quarantine"
    stuck_drain_delay = 0.0
    lockstep_configure = False  # one phase machine per node, site.yml --limit NODE

    def __init__(self, fleet: Fleet) -> None:
        self.name = "(e) rollout scheduler"
        self.scheduler = Scheduler(fleet.work_items(), fleet.policy(), fleet.gpu_totals())
        self.open_domain: str | None = None
        self.decisions = 0
        self.halted: str | None = None

    def step(self, sim: Engine) -> None:
        snap = Snapshot(states=sim.states, open_domain=self.open_domain, ceph_clean=sim.ceph_clean,
                        ok_to_stop=sim.ok_view, now=sim.now)
        d = self.scheduler.decide(snap, explain=False)
        self.decisions += 1
        self.open_domain = d.open_domain
        self.halted = d.halt
        for v in d.admit:
            sim.admit(v.node)
        for v in d.start:
            sim.start(v.node)


class RolloutOperatorFixed(Rollout):
    """(e') the same scheduler under the anchors' fault handling: a stuck drain or a dead BMC is waited out
    until an operator fixes it (no quarantine), so B6 compares scheduling, not how much work is left over."""

    fault_mode = "operator"
    stuck_drain_delay = DRAIN_TIMEOUT + OPERATOR_RESPONSE

    def __init__(self, fleet: Fleet) -> None:
        super().__init__(fleet)
        self.name = "(e') rollout scheduler, faults fixed by operator"


def all_strategies(fleet: Fleet, seed: int, ks: tuple[int, ...] = (1, 2, 4),
                   operator_variant: bool = False) -> list[Strategy]:
    out: list[Strategy] = [SerialOne(fleet), Batches.percent(fleet), Batches.racks(fleet)]
    out += [MachineDeployment(fleet, k, seed) for k in ks]
    out.append(Rollout(fleet))
    if operator_variant:
        out.append(RolloutOperatorFixed(fleet))
    return out
