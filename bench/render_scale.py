"""Render time and memory for a generated 10,000-node region (issue 4 target: render < 5 s).

What is measured, separately (numbers go to stdout as JSON, progress to stderr):
- `load_s`: `rollout.inventory.load_region` (ansible-core inventory + vars; not part of the render target);
- `render_s`: `rollout.render.manifests.render` = build from templates + CRD schema validation of every
  object + semantic checks + YAML serialisation, best and median wall time of `--repeat` runs, and
  the best process CPU time (`render_cpu_s_best`, the wall time on an idle core);
- `render_peak_py_mib`: peak Python heap allocated during one render (tracemalloc, separate run, since
  tracing slows it down); `max_rss_mib`: the process' peak RSS (includes the loaded region);
- `bundle_s`: building the role bundle (every node's vars file) in memory.
The machine is shared: run it when nothing else is busy and report the load average with the numbers.

Usage: python bench/render_scale.py [--racks 50 --nodes-per-rack 200] [--dir /tmp/rr-bench] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gen_region import generate_region
from rollout.bundle import build_bundle
from rollout.inventory import load_region
from rollout.paths import project_dir
from rollout.render.capi_objects import BundleRef
from rollout.render.capi_template import TemplateSet
from rollout.render.crd_schema import CrdValidator
from rollout.render.manifests import render


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--racks", type=int, default=50)
    parser.add_argument("--nodes-per-rack", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=None, help="inventory root to reuse (default: temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="CI smoke: 2 racks x 10 nodes, one render")
    args = parser.parse_args()
    if args.quick:
        args.racks, args.nodes_per_rack, args.repeat = 2, 10, 1

    root = args.dir or Path(tempfile.mkdtemp(prefix="rr-bench-"))
    name = f"gen{args.racks}x{args.nodes_per_rack}"
    if not (root / name / "region.yml").exists():
        t = time.perf_counter()
        generate_region(root, args.racks, args.nodes_per_rack)
        print(f"generated {name} in {time.perf_counter() - t:.1f}s under {root}", file=sys.stderr)

    t = time.perf_counter()
    source = load_region(root, name)
    load_s = time.perf_counter() - t
    print(f"loaded {len(source.region.nodes)} nodes in {load_s:.1f}s", file=sys.stderr)

    templates, validator = TemplateSet(), CrdValidator()
    bundle = BundleRef("http://bundles.invalid/rollout-bundle.tar.gz", "0" * 64)
    render(source.region, bundle, templates=templates, validator=validator)  # warm: compile the schemas
    times, cpu, size, objects = [], [], 0, 0
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        rendered = render(source.region, bundle, templates=templates, validator=validator)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        size, objects = sum(len(b) for b in rendered.files.values()), len(rendered.objects)
    tracemalloc.start()
    render(source.region, bundle, templates=templates, validator=validator)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    t = time.perf_counter()
    bundle_bytes = len(build_bundle(source, project_dir()).data)
    bundle_s = time.perf_counter() - t

    result = {
        "schema": "rollout.bench.render_scale/v1",
        "nodes": len(source.region.nodes),
        "objects": objects,
        "manifest_bytes": size,
        "load_s": round(load_s, 2),
        "render_s_best": round(min(times), 3),
        "render_s_median": round(statistics.median(times), 3),
        "render_cpu_s_best": round(min(cpu), 3),  # CPU time: what the wall time would be on an idle core
        "render_peak_py_mib": round(peak / 2**20, 1),
        "max_rss_mib": round(_rss_mib(), 1),
        "bundle_s": round(bundle_s, 2),
        "bundle_bytes": bundle_bytes,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "target_render_s": 5.0,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
