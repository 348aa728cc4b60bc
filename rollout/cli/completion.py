"""Shell completion for regions and node names, read from the inventory without ansible-core.

Completion must answer in milliseconds, so it reads `hosts.yml` directly (host names are keys
under `hosts:` anywhere in the tree); it never fails loudly (completion errors would garble shells).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def _root() -> Path:
    return Path(os.environ.get("ROLLOUT_INVENTORY_ROOT", "inventories"))


def _hosts(tree: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "hosts" and isinstance(value, dict):
                found.update(str(h) for h in value)
            else:
                found |= _hosts(value)
    return found


def regions(root: Path | None = None) -> list[str]:
    base = root or _root()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "region.yml").is_file())


def nodes(root: Path | None = None) -> list[str]:
    base = root or _root()
    out: set[str] = set()
    for region in regions(base):
        try:
            out |= _hosts(yaml.safe_load((base / region / "hosts.yml").read_text()))
        except (OSError, yaml.YAMLError):
            continue
    return sorted(out)


def complete_region(incomplete: str) -> list[str]:
    return [r for r in regions() if r.startswith(incomplete)]


def complete_node(incomplete: str) -> list[str]:
    return [n for n in nodes() if n.startswith(incomplete)]
