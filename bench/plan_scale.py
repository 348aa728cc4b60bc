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


READING = """Reading. Loading through ansible-core's InventoryManager + VariableManager (what `ansible-playbook`
sees, vault and precedence included) costs about 14x a bare PyYAML read of the same files, about 9 ms
per node, dominated by `VariableManager.get_vars` per host. It is linear: 10,000 nodes take 1.5
minutes and 669 MB on a cold load. That needed a faster path, so rollout keeps a cache of the
validated region keyed by a fingerprint of every inventory file (`rollout/inventory_cache.py`;
secrets only vault-encrypted): later commands load 10,000 nodes in 6.6 s and 249 MB, and the plan
itself takes 0.37 s. `rollout validate` always does the full load.
"""


def measure(region_dir: Path, cache_dir: Path | None) -> dict[str, float]:
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
    source = load_region(region_dir.parent, region_dir.name, cache_dir=cache_dir)
    t2 = time.perf_counter()
    region = source.region
    plan = make_plan(region, unknown(region.name), PlanRequest(), "2026-11-29T00:00:00Z")
    t3 = time.perf_counter()
    assert len(plan.actions) == len(region.nodes)
    return {"nodes": len(region.nodes), "yaml_s": t1 - t0, "load_validate_s": t2 - t1, "plan_s": t3 - t2,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(region_dir: str, cache_dir: str | None) -> None:
    print(json.dumps(measure(Path(region_dir), Path(cache_dir) if cache_dir else None)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small size, one repetition, no doc update")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.cache)
        return
    from bench.gen_region import generate_region

    sizes = [(1, 100)] if args.quick else [(5, 200), (50, 200)]
    reps = 1 if args.quick else 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="rollout-b3-") as tmp:
        for racks, per in sizes:
            region_dir = generate_region(Path(tmp), racks, per)
            cache = Path(tmp) / "cache"

            def run(*extra: str, region_dir: Path = region_dir) -> dict[str, float]:
                out = subprocess.run([sys.executable, __file__, "--child", str(region_dir), *extra], check=True,
                                     capture_output=True, text=True, cwd=ROOT)
                return dict(json.loads(out.stdout.strip().splitlines()[-1]))

            # Cold: the full ansible-core load (and it fills the cache); warm: later commands hit the cache.
            cold = [run("--cache", str(cache))]
            warm = [run("--cache", str(cache)) for _ in range(reps)]
            med = {k: statistics.median(r[k] for r in warm) for k in warm[0]}
            med["cold_load_s"] = statistics.median(r["load_validate_s"] for r in cold)
            med["cold_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in cold)
            rows.append(med)
            print(f"{int(med['nodes']):>6} nodes: yaml {med['yaml_s']:.2f} s, cold load+validate "
                  f"{med['cold_load_s']:.2f} s ({med['cold_load_s'] / med['yaml_s']:.1f}x yaml, "
                  f"RSS {med['cold_rss_mb']:.0f} MB), cached load {med['load_validate_s']:.2f} s, "
                  f"plan {med['plan_s'] * 1000:.0f} ms, peak RSS {med['peak_rss_mb']:.0f} MB")
    if args.quick:
        return
    lines = [
        "| nodes | PyYAML C baseline (s) | cold load + validate via ansible-core (s) | ratio to baseline | "
        "cold peak RSS (MB) | cached load (s) | plan (s) | plan < 2 s | peak RSS, cached load + plan (MB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {int(r['nodes'])} | {r['yaml_s']:.2f} | {r['cold_load_s']:.2f} | "
                     f"{r['cold_load_s'] / r['yaml_s']:.1f}x | {r['cold_rss_mb']:.0f} | {r['load_validate_s']:.2f} | "
                     f"{r['plan_s']:.3f} | {'met' if r['plan_s'] < 2 else 'MISSED'} | {r['peak_rss_mb']:.0f} |")
    out = ROOT / "docs" / "benchmarks.d" / "b3_plan.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("## B3: inventory load, validation and plan at scale\n\n"
                   "Command: `python bench/plan_scale.py` (regions from `bench/gen_region.py`; cold: 1 child "
                   "process; cached: median of 3; each a fresh process)\n\n"
                   + "\n".join(lines) + "\n\n" + READING)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
