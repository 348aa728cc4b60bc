"""B6: makespan degradation under BMC, PXE, stuck-drain and no-return faults at 1x and 3x the reference rates.

Usage (from the repository root):
    .venv/bin/python -m bench.b6_faults            # full: 200 seeds, 48 and 200 nodes
                                                   # -> docs/benchmarks.d/b6.md
    .venv/bin/python -m bench.b6_faults --quick    # CI smoke: 12 nodes, 4 seeds

Two variants: all faults, and the same without hardware loss (no-return hosts), because a host that never
comes back costs every failure-domain-respecting strategy the same multi-hour backfill before the next rack
may go down; the second variant shows what scheduling itself changes. Writes `b6.json` next to the table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/b6_faults.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sim import fleet as params
from bench.sim.runner import Row, machine, md_table, run_matrix, summarise

ROOT = Path(__file__).resolve().parents[1]
E = "(e) rollout scheduler"
EO = "(e') rollout scheduler, faults fixed by operator"
MULTS = (0.0, 1.0, 3.0)


def degradation(summary: list[Row]) -> list[Row]:
    base = {(r["size"], r["strategy"]): r for r in summary if r["mult"] == 0.0}
    out = []
    for r in summary:
        if r["mult"] == 0.0:
            continue
        b = base[(r["size"], r["strategy"])]
        out.append({**r, "deg_p50": r["p50_h"] / b["p50_h"], "deg_p95": r["p95_h"] / b["p95_h"]})
    return out


def fmt(x: float, nd: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{nd}f}"


def section(title: str, summary: list[Row], sizes: list[int]) -> list[str]:
    deg = {(r["size"], r["mult"], r["strategy"]): r for r in degradation(summary)}
    base = {(r["size"], r["strategy"]): r for r in summary if r["mult"] == 0.0}
    out = [f"### {title}", ""]
    for n in sizes:
        rows = []
        for s in sorted({r["strategy"] for r in summary}):
            one, three = deg[(n, 1.0, s)], deg[(n, 3.0, s)]
            rows.append([
                s, fmt(base[(n, s)]["p50_h"]), fmt(one["p50_h"]), fmt(three["p50_h"]), fmt(three["p95_h"]),
                fmt(one["deg_p50"]), fmt(three["deg_p50"]), fmt(three["deg_p95"]),
                fmt(three["quarantined_mean"], 1), str(three["fd_violations"]), str(three["unfinished"]),
            ])
        racks, hosts = params.SIZES[n]
        out += [f"{n} nodes ({racks} racks x {hosts}):", ""]
        out.append(md_table(["strategy", "0x p50 h", "1x p50 h", "3x p50 h", "3x p95 h", "1x / 0x (p50)",
                             "3x / 0x (p50)", "3x / 0x (p95)", "quarantined/run at 3x",
                             "FD violations at 3x", "unfinished"], rows))
        e3 = deg[(n, 3.0, E)]
        met = e3["deg_p50"] <= 1.5
        e3o = deg[(n, 3.0, EO)]
        out += ["", f"Target (e) degrades by <= 1.5x under 3x faults: p50 {fmt(e3['deg_p50'])}x, "
                    f"p95 {fmt(e3['deg_p95'])}x -> {'met' if met else '**missed**'} "
                    f"((e') with operator-fixed faults: p50 {fmt(e3o['deg_p50'])}x).", ""]
    return out


def reading(sizes: list[int]) -> list[str]:
    """Why the all-faults target is missed, with the model's own numbers."""
    rate = params.FAULT_RATES["no_return"] * 3
    lo, hi = params.BACKFILL_MIB_S
    mean_h = params.HOST_DATA_TIB * 1024 * 1024 * math.log(hi / lo) / (hi - lo) / 3600  # E[size / U(lo, hi)]
    odds = ", ".join(f"{100 * (1 - (1 - rate) ** n):.0f} % of {n}-node runs" for n in sizes)
    return [
        "### Reading",
        "",
        f"- At 3x, {100 * rate:g} % of hosts never come back after the reboot: at least one does in {odds}. "
        f"Its {params.HOST_DATA_TIB:g} TiB must be backfilled (mean {mean_h:.1f} h at 70-205 MiB/s) before "
        "Ceph is active+clean and `ok-to-stop` lets another rack go down (its PGs run on 2 of 3 copies). "
        "Every failure-domain-respecting strategy pays this in full; (b) hides part of it only by taking "
        "a second rack down. This is why (e) misses 1.5x with hardware loss and meets it without "
        "(where stuck drains, BMC and PXE faults are absorbed: quarantine costs one timeout, not a slot).",
        "- (e) finishes a run with more nodes quarantined (stuck drains and dead BMCs, left for a follow-up "
        "`rollout apply` once fixed); (e') is the same scheduler waiting for the operator like the "
        "anchors do, for an apples-to-apples comparison.",
        "- What would change the all-faults number: detecting a dead host from the BMC (POST codes, power "
        "state) instead of the 30 min SSH timeout, raising `osd_max_backfills` for the rollout window, "
        "smaller hosts, or a policy that lets the rollout stop at a dead host and resume after repair.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--sizes", type=int, nargs="*", default=None, choices=sorted(params.SIZES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "docs" / "benchmarks.d")
    args = ap.parse_args(argv)
    if args.quick and args.out_dir == ap.get_default("out_dir"):
        # The CI smoke variant never overwrites the recorded full results.
        args.out_dir = Path(tempfile.mkdtemp(prefix="rollout-bench-quick-"))
    sizes = sorted(args.sizes or ([12] if args.quick else [48, 200]))
    seeds = args.seeds or (4 if args.quick else 200)
    cmd = "python -m bench.b6_faults" + (" --quick" if args.quick else "")
    t0 = time.perf_counter()
    all_faults = summarise(run_matrix(sizes, seeds, MULTS, workers=args.workers, operator_variant=True))
    no_hw = summarise(run_matrix(sizes, seeds, MULTS, no_hw_loss=True, workers=args.workers,
                                 operator_variant=True))
    wall = time.perf_counter() - t0
    rates = ", ".join(f"{k} {100 * v:g} %" for k, v in params.FAULT_RATES.items())
    lines = [
        "## B6: makespan under faults (simulation)",
        "",
        f"Command: `{cmd}` ({seeds} seeds, fault multipliers 0/1/3, wall time {wall:.0f} s on {machine()}).",
        f"Fault rates at 1x per node-attempt: {rates}. Common random numbers: the 3x faults are a "
        "superset of the 1x faults on the same durations.",
        f"Costs: anchors wait {params.OPERATOR_RESPONSE / 60:.0f} min for an operator after a stuck drain "
        "or a dead host, +20 min BMC reset; rollout quarantines at its timeouts (drain 15 min, BMC 2 min, "
        f"SSH 30 min). A dead host's {params.HOST_DATA_TIB:g} TiB are backfilled at 70-205 MiB/s before "
        "Ceph is clean again.",
        "",
    ]
    lines += section("All faults", all_faults, sizes)
    lines += section("Without hardware loss (no-return rate 0)", no_hw, sizes)
    lines += reading(sizes)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "b6.json").write_text(json.dumps({
        "sizes": sizes, "seeds": seeds, "all_faults": degradation(all_faults) + [r for r in all_faults
                                                                              if r["mult"] == 0.0],
        "no_hw_loss": degradation(no_hw) + [r for r in no_hw if r["mult"] == 0.0]}, indent=1, default=str))
    (args.out_dir / "b6.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
