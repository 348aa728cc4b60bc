"""B3 (plan side): load + validate + plan for generated regions; time and peak RSS per size.

Each size runs in its own child process so peak RSS (ru_maxrss) belongs to that size alone.
Baseline in the same child: reading the same YAML files with PyYAML's C loader (what a hand-written
fast path would cost at best), so `load / yaml` says what going through ansible-core costs.

    python bench/plan_scale.py            # 1,000 and 10,000 nodes, 3 repetitions -> docs/benchmarks.d/b3_plan.md
    python bench/plan_scale.py --quick    # 100 nodes, 1 repetition (CI smoke; no file written)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure(region_dir: Path) -> dict[str, float]:
    import yaml

    from rollout.inventory import load_region
    from rollout.model.observation import unknown
    from rollout.planner.plan import PlanRequest, make_plan

    t0 = time.perf_counter()
    for path in sorted(region_dir.rglob("*.yml")):
        text = path.read_text()
        if not text.startswith("$ANSIBLE_VAULT"):
            yaml.load(text, Loader=yaml.CSafeLoader)
    t1 = time.perf_counter()
    source = load_region(region_dir.parent, region_dir.name)
    t2 = time.perf_counter()
    region = source.region
    plan = make_plan(region, unknown(region.name), PlanRequest(), "2026-11-29T00:00:00Z")
    t3 = time.perf_counter()
    assert len(plan.actions) == len(region.nodes)
    return {"nodes": len(region.nodes), "yaml_s": t1 - t0, "load_validate_s": t2 - t1, "plan_s": t3 - t2,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(region_dir: str) -> None:
    print(json.dumps(measure(Path(region_dir))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small size, one repetition, no doc update")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from bench.gen_region import generate_region

    sizes = [(1, 100)] if args.quick else [(5, 200), (50, 200)]
    reps = 1 if args.quick else 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="rollout-b3-") as tmp:
        for racks, per in sizes:
            region_dir = generate_region(Path(tmp), racks, per)
            runs = []
            for _ in range(reps):
                out = subprocess.run([sys.executable, __file__, "--child", str(region_dir)], check=True,
                                     capture_output=True, text=True, cwd=ROOT)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append(med)
            print(f"{int(med['nodes']):>6} nodes: yaml {med['yaml_s']:.2f} s, load+validate {med['load_validate_s']:.2f} s "
                  f"({med['load_validate_s'] / med['yaml_s']:.1f}x yaml), plan {med['plan_s'] * 1000:.0f} ms, "
                  f"peak RSS {med['peak_rss_mb']:.0f} MB")
    if args.quick:
        return
    lines = [
        "| nodes | PyYAML C baseline (s) | load + validate via ansible-core (s) | ratio to baseline | plan (s) | "
        "plan target < 2 s | peak RSS (MB) |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {int(r['nodes'])} | {r['yaml_s']:.2f} | {r['load_validate_s']:.2f} | "
                     f"{r['load_validate_s'] / r['yaml_s']:.1f}x | {r['plan_s']:.3f} | "
                     f"{'met' if r['plan_s'] < 2 else 'MISSED'} | {r['peak_rss_mb']:.0f} |")
    out = ROOT / "docs" / "benchmarks.d" / "b3_plan.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("Command: `python bench/plan_scale.py` (median of 3 child processes per size)\n\n"
                   + "\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
