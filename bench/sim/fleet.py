"""Region model, phase-duration distributions, fault rates, seeded traces and the failure-domain lower bound.

Numbers come from /work/shared/reference/performance-reliability.md section 5.1 (the "Basis" column there);
the ones marked ASSUMPTION below have no published source and are sweep parameters.

Invariants:
- A trace depends only on (fleet, seed, fault multiplier); faults use one uniform draw per node and fault
  type, compared with rate x multiplier, so the 3x trace's faults are a superset of the 1x trace's
  (common random numbers: degradation is measured on the same nodes).
- Durations are lognormal(median, p95) clipped at the cap; all values are seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rollout.model.region import Policy
from rollout.planner.scheduler import WorkItem, natural_key

# (median, p95, cap) in seconds; cap None = unbounded.
PRECHECK = (5.0, 30.0, None)  # ok-to-stop / pre-check [ASSUMPTION]
DRAIN = (90.0, 360.0, 360.0)  # k8s drain, kubespray timeout 360 s
VGPU_EVAC = (180.0, 600.0, None)  # vGPU tenant shutdown + restart elsewhere [ASSUMPTION]
POST = (240.0, 540.0, 900.0)  # per power cycle, Dell LC heuristics
RAMDISK = (180.0, 480.0, 1800.0)  # IPA ramdisk boot + lookup with fast-track [ASSUMPTION]
IMAGE_WRITE = (300.0, 900.0, 1800.0)  # ~1.5 GB qcow2: between BMO#1660's 0.6 GB/3 min and 2.2 GB/20 min
FIRST_BOOT_JOIN = (180.0, 480.0, 900.0)  # first boot + cloud-init + kubeadm join
OVN_GRID = (30.0, 120.0, None)  # OVN chassis re-register + GRID license check [ASSUMPTION]
OSD_UP = (30.0, 120.0, None)  # OSDs start and peer [ASSUMPTION]
LOG_RECOVERY = (300.0, 3600.0, 18000.0)  # Ceph return with data preserved
BMC_ACTION = 10.0  # one-time boot override + power cycle request

# Fault rates per node-attempt at 1x (section 5.1 failure injection table; all [ASSUMPTION]).
FAULT_RATES = {
    "bmc_transient": 0.03,  # retry succeeds: +30..180 s
    "bmc_persistent": 0.005,  # needs a BMC reset: +20 min
    "pxe_timeout": 0.01,  # hits the 30 min cap, retried once
    "no_return": 0.005,  # host does not come back after reboot (hardware)
    "stuck_drain": 0.02,  # drain stuck on a PDB
}
BMC_RESET = 1200.0
PXE_CAP = 1800.0
OPERATOR_RESPONSE = 1800.0  # an operator notices and acts on a stopped play / stuck machine [ASSUMPTION]
HOST_DATA_TIB = 4.0  # data on a host's 12 OSDs that must be backfilled when it never returns [ASSUMPTION]
BACKFILL_MIB_S = (70.0, 205.0)  # cluster backfill rate, osd_max_backfills 1-4 (CSDN measurement)
IMAGE_GB = 1.5
IMAGE_SERVER_GBPS = 10.0  # shared image-server link; 20 writers x 1.5 GB need 24 s: never binding here

PROVISIONING_LIMIT = 20  # BMO PROVISIONING_LIMIT default
GPU_FLOOR_SHARE = 0.6  # keep 60 % of each GPU model in service [ASSUMPTION]

# Fleet sizes for the sweep: racks x hosts per rack.
SIZES: dict[int, tuple[int, int]] = {
    12: (3, 4), 24: (4, 6), 48: (6, 8), 96: (8, 12), 200: (10, 20), 500: (20, 25), 1000: (25, 40),
}


@dataclass(frozen=True)
class Fleet:
    racks: int
    hosts_per_rack: int
    names: tuple[str, ...]  # inventory order (natural: rack by rack)
    domain: tuple[str, ...]  # failure domain per node, same index as names
    gpu: tuple[str | None, ...]

    @property
    def size(self) -> int:
        return len(self.names)

    def gpu_totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for g in self.gpu:
            if g:
                totals[g] = totals.get(g, 0) + 1
        return totals

    def policy(self) -> Policy:
        """The region policy (e) runs under: a whole rack may be down (Ceph tolerates one rack), BMO's
        provisioning limit, no halt (failures are counted and reported instead), GPU floors."""
        floors = tuple(sorted((m, int(GPU_FLOOR_SHARE * n)) for m, n in self.gpu_totals().items()))
        return Policy(
            max_unavailable=self.hosts_per_rack,
            max_failure_domains_down=1,
            max_failures=self.size + 1,
            provisioning_concurrency=PROVISIONING_LIMIT,
            gpu_capacity_floor=floors,
        )

    def work_items(self) -> list[WorkItem]:
        return [WorkItem(n, d, g) for n, d, g in zip(self.names, self.domain, self.gpu, strict=True)]


def make_fleet(racks: int, hosts: int) -> Fleet:
    names, domains, gpus = [], [], []
    for r in range(1, racks + 1):
        for h in range(1, hosts + 1):
            names.append(f"r{r}-n{h:03d}")
            domains.append(f"rack-r{r}")
            # One host in four carries T4s, one in eight M10s (spread over every rack).
            gpus.append("T4" if h % 4 == 1 else ("M10" if h % 8 == 3 else None))
    order = sorted(range(len(names)), key=lambda i: natural_key(names[i]))
    return Fleet(
        racks, hosts, tuple(names[i] for i in order), tuple(domains[i] for i in order),
        tuple(gpus[i] for i in order),
    )


def fleet_of_size(n: int) -> Fleet:
    racks, hosts = SIZES[n]
    return make_fleet(racks, hosts)


@dataclass(frozen=True)
class Trace:
    """Per-node durations (seconds) and faults for one seed; arrays indexed like Fleet.names."""

    prep: np.ndarray  # precheck + drain (+ vGPU evacuation)
    prov: np.ndarray  # BMC action + POST + ramdisk + image write (holds a provisioning slot)
    ret_boot: np.ndarray  # final POST until the new OS answers
    ret_cfg: np.ndarray  # first boot/join + OVN/GRID + OSDs up (Ansible tasks on the Ansible path)
    rec: np.ndarray  # Ceph log recovery after the node's OSDs are back
    bmc_extra: np.ndarray  # transient BMC retries (every strategy pays them)
    pxe_extra: np.ndarray  # PXE timeout + second ramdisk boot (every strategy retries once)
    bmc_persistent: np.ndarray  # bool
    no_return: np.ndarray  # bool
    stuck_drain: np.ndarray  # bool
    backfill: np.ndarray  # seconds to re-replicate a dead host's data

    @property
    def ret(self) -> np.ndarray:
        total: np.ndarray = self.ret_boot + self.ret_cfg
        return total


def _lognormal(rng: np.random.Generator, spec: tuple[float, float, float | None], n: int) -> np.ndarray:
    median, p95, cap = spec
    sigma = math.log(p95 / median) / 1.6448536269514722
    x = median * np.exp(sigma * rng.standard_normal(n))
    return np.minimum(x, cap) if cap is not None else x


def make_trace(fleet: Fleet, seed: int, fault_mult: float = 0.0) -> Trace:
    rng = np.random.default_rng(seed)
    n = fleet.size
    is_gpu = np.array([g is not None for g in fleet.gpu])
    prep = _lognormal(rng, PRECHECK, n) + _lognormal(rng, DRAIN, n) + is_gpu * _lognormal(rng, VGPU_EVAC, n)
    ramdisk2 = _lognormal(rng, RAMDISK, n)
    prov = (BMC_ACTION + _lognormal(rng, POST, n) + _lognormal(rng, RAMDISK, n)
            + _lognormal(rng, IMAGE_WRITE, n))
    ret_boot = _lognormal(rng, POST, n)
    ret_cfg = _lognormal(rng, FIRST_BOOT_JOIN, n) + _lognormal(rng, OVN_GRID, n) + _lognormal(rng, OSD_UP, n)
    rec = _lognormal(rng, LOG_RECOVERY, n)
    # Fault draws come last and always in the same order, so they do not shift the durations above.
    u = {k: rng.random(n) for k in FAULT_RATES}
    hit = {k: u[k] < rate * fault_mult for k, rate in FAULT_RATES.items()}
    bmc_retry = rng.uniform(30.0, 180.0, n)
    rate = rng.uniform(*BACKFILL_MIB_S, n)
    return Trace(
        prep=prep, prov=prov, ret_boot=ret_boot, ret_cfg=ret_cfg, rec=rec,
        bmc_extra=np.where(hit["bmc_transient"], bmc_retry, 0.0),
        pxe_extra=np.where(hit["pxe_timeout"], PXE_CAP + ramdisk2, 0.0),
        bmc_persistent=hit["bmc_persistent"], no_return=hit["no_return"], stuck_drain=hit["stuck_drain"],
        backfill=HOST_DATA_TIB * 1024 * 1024 / rate,
    )


def lower_bound(fleet: Fleet, trace: Trace, slots: int = PROVISIONING_LIMIT) -> float:
    """LB = min_h prep_h + sum over FDs of max( max_h (prov_h + ret_h + rec_h),
    sum_h prov_h / C_prov + min_h (ret_h + rec_h), bytes_FD / B_img ).

    Valid for ANY schedule that keeps one failure domain disrupted (OSDs down or PGs not yet clean) at a
    time: the domains' disrupted windows are disjoint; inside one, every node must be provisioned, return
    and recover, and C_prov slots bound the provisioning work; nothing goes down before some node drained.
    Fault-free durations only (faults are extra work no schedule can avoid)."""
    total = float(trace.prep.min())
    by_domain: dict[str, list[int]] = {}
    for i, d in enumerate(fleet.domain):
        by_domain.setdefault(d, []).append(i)
    img_s = IMAGE_GB * 8.0 / IMAGE_SERVER_GBPS
    for idx in by_domain.values():
        ix = np.array(idx)
        path = trace.prov[ix] + trace.ret[ix] + trace.rec[ix]
        packed = trace.prov[ix].sum() / slots + (trace.ret[ix] + trace.rec[ix]).min()
        total += max(float(path.max()), float(packed), img_s * len(idx))
    return total
