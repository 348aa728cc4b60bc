"""Assemble docs/benchmarks.md from the per-benchmark sections in docs/benchmarks.d/*.md (sorted)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["00-intro", "b1", "b6", "b2", "b3_plan", "render_scale", "b3_latency", "lab_molecule"]


def main() -> None:
    parts = ROOT / "docs" / "benchmarks.d"
    names = [n for n in ORDER if (parts / f"{n}.md").exists()]
    names += sorted(p.stem for p in parts.glob("*.md") if p.stem not in ORDER)
    text = "\n\n".join((parts / f"{n}.md").read_text().strip() for n in names) + "\n"
    (ROOT / "docs" / "benchmarks.md").write_text(text)
    print(f"wrote docs/benchmarks.md from {len(names)} sections")


if __name__ == "__main__":
    main()
