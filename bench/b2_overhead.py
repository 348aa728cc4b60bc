"""B2: orchestration overhead of `rollout apply` versus plain `ansible-playbook` on the same lab nodes.

Both sides do the same work on every lab node: `playbooks/site.yml` then `playbooks/verify.yml`, at
the same concurrency (the lab policy's max_unavailable, as `--forks`). The rollout side adds what
rollout is for: observation (a fetch play), planning, the journal, one ansible-runner process per
node and step, the applied-revision marker. Baseline and candidate alternate in the same script
(noisy machines), several repetitions; the table reports medians, spread and the ratio.

Needs a configured lab (`rollout lab up` + `rollout apply --region lab --yes`).

    python bench/b2_overhead.py             # 3 repetitions -> docs/benchmarks.d/b2.md
    python bench/b2_overhead.py --quick     # 1 repetition on one node, no doc update (CI smoke)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INV = ROOT / "inventories" / "lab"


def _env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(ROOT / "images" / "containers.conf"),
            "ANSIBLE_ROLES_PATH": str(ROOT / "roles")}


def lab_nodes() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from rollout.inventory import load_region

    return [n.name for n in load_region(ROOT / "inventories", "lab").region.nodes]


def plain(nodes: list[str], forks: int) -> float:
    """The baseline: ansible-playbook site.yml then verify.yml, limited to the nodes, same forks."""
    vault = ROOT / ".rollout" / "lab" / "vault-password.txt"
    start = time.perf_counter()
    for playbook in ("site.yml", "verify.yml"):
        subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(INV / "hosts.yml"),
                        str(ROOT / "playbooks" / playbook), "--limit", ",".join(nodes), "--forks", str(forks),
                        "--vault-password-file", str(vault)], cwd=ROOT, env=_env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def rollout(nodes: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rollout.cli.main", "apply", "--region", "lab", "--yes",
                    "--force-configure", "--limit", ",".join(nodes)], cwd=ROOT, env=_env(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if not (INV / "host_vars").is_dir():
        print("B2 needs the lab: `rollout lab up && rollout apply --region lab --yes`; skipping the measurement")
        return
    nodes = lab_nodes()[:1] if args.quick else lab_nodes()
    reps = 1 if args.quick else args.reps
    forks = 2  # the lab policy's max_unavailable: rollout never configures more nodes at once
    base, cand = [], []
    for i in range(reps):
        base.append(plain(nodes, forks))
        cand.append(rollout(nodes))
        print(f"rep {i + 1}: ansible-playbook {base[-1]:.1f} s, rollout apply {cand[-1]:.1f} s "
              f"({cand[-1] / base[-1]:.3f}x)")
    b, c = statistics.median(base), statistics.median(cand)
    ratio = c / b
    print(f"median: ansible-playbook {b:.1f} s, rollout apply {c:.1f} s, ratio {ratio:.3f} "
          f"(overhead {100 * (ratio - 1):+.1f} %; target <= +5 %)")
    if args.quick:
        return
    spread = f"{min(base):.1f}-{max(base):.1f}", f"{min(cand):.1f}-{max(cand):.1f}"
    out = ROOT / "docs" / "benchmarks.d" / "b2.md"
    out.write_text(
        "## B2: orchestration overhead versus plain ansible-playbook (lab)\n\n"
        "Command: `python bench/b2_overhead.py` (alternating, same script; lab 3 racks x 2 nodes, forks 2 = "
        "the lab's max_unavailable)\n\n"
        "| side | median (s) | range (s) | runs |\n|---|---:|---|---:|\n"
        f"| ansible-playbook site.yml + verify.yml | {b:.1f} | {spread[0]} | {reps} |\n"
        f"| rollout apply --force-configure | {c:.1f} | {spread[1]} | {reps} |\n\n"
        f"Ratio {ratio:.3f}: overhead {100 * (ratio - 1):+.1f} % of wall time (target <= +5 %: "
        f"{'met' if ratio <= 1.05 else 'MISSED'}).\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
