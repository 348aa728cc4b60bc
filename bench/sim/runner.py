"""Run strategies over (fleet size, seed) traces in worker processes and summarise the results.

Invariants: a task is (size, seed, fault multiplier, no hardware loss, with (e')) and returns one row per
strategy;
rows are sorted before summarising, so the summary does not depend on the worker count or finishing order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from bench.sim.engine import Engine
from bench.sim.fleet import fleet_of_size, lower_bound, make_trace
from bench.sim.strategies import all_strategies

Row = dict[str, Any]


def run_task(task: tuple[int, int, float, bool, bool]) -> list[Row]:
    size, seed, mult, no_hw_loss, operator_variant = task
    fleet = fleet_of_size(size)
    trace = make_trace(fleet, seed, mult)
    if no_hw_loss:
        trace = replace(trace, no_return=np.zeros_like(trace.no_return))
    lb = lower_bound(fleet, trace)
    rows = []
    for strategy in all_strategies(fleet, seed, operator_variant=operator_variant):
        res = Engine(fleet, trace).run(strategy)
        row = asdict(res)
        row.update(size=size, seed=seed, mult=mult, lb=lb, no_hw_loss=no_hw_loss,
                   dead_hosts=int(trace.no_return.sum()))
        rows.append(row)
    return rows


def run_matrix(sizes: Iterable[int], seeds: int, mults: Iterable[float] = (0.0,), no_hw_loss: bool = False,
               workers: int | None = None, operator_variant: bool = False) -> list[Row]:
    tasks = [(n, s, m, no_hw_loss, operator_variant) for n in sizes for m in mults for s in range(seeds)]
    # Big fleets first so the pool's tail is short.
    tasks.sort(key=lambda t: -t[0])
    workers = workers or min(2, os.cpu_count() or 1)
    if workers <= 1:
        chunks = [run_task(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            chunks = list(pool.map(run_task, tasks, chunksize=4))
    rows = [r for chunk in chunks for r in chunk]
    rows.sort(key=lambda r: (r["size"], r["mult"], r["strategy"], r["seed"]))
    return rows


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values, dtype=float), q)) if values else math.nan


def summarise(rows: list[Row]) -> list[Row]:
    """One row per (size, mult, strategy): makespan p50/p95 (hours), ratio to LB p50/p95 (per seed),
    nodes per hour at p50, violations summed over seeds, runs that never finished."""
    groups: dict[tuple[int, float, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r["size"], r["mult"], r["strategy"]), []).append(r)
    out = []
    for (size, mult, strategy), rs in sorted(groups.items()):
        done = [r for r in rs if math.isfinite(r["makespan"])]
        ms = [r["makespan"] / 3600 for r in done]
        ratio = [r["makespan"] / r["lb"] for r in done]
        p50 = pct(ms, 50)
        out.append({
            "size": size, "mult": mult, "strategy": strategy, "seeds": len(rs),
            "unfinished": len(rs) - len(done),
            "p50_h": p50, "p95_h": pct(ms, 95), "lb_p50_h": pct([r["lb"] / 3600 for r in rs], 50),
            "ratio_p50": pct(ratio, 50), "ratio_p95": pct(ratio, 95),
            "nodes_per_h": size / p50 if p50 and math.isfinite(p50) else math.nan,
            "fd_violations": sum(r["fd_violations"] for r in rs),
            "runs_with_fd_violation": sum(1 for r in rs if r["fd_violations"]),
            "degraded_admissions": sum(r["degraded_admissions"] for r in rs),
            "gpu_violations": sum(r["gpu_violations"] for r in rs),
            "quarantined_mean": float(np.mean([r["quarantined"] for r in rs])),
            "max_in_flight": max(r["max_in_flight"] for r in rs),
            "max_provisioning": max(r["max_provisioning"] for r in rs),
        })
    return out


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
