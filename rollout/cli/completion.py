"""Shell completion for regions and node names, read from the inventory without ansible-core.

Completion must answer in milliseconds, so it reads `hosts.yml` directly (host names are keys
under `hosts:` anywhere in the tree); it never fails loudly (completion errors would garble shells).
The inventory root is the one the command line names (`rollout --inventory-root DIR ... <TAB>`), else
ROLLOUT_INVENTORY_ROOT, else ./inventories: completion offers what the command will then accept.

Install: `rollout --install-completion` (bash, zsh, fish; edits your shell's rc file), or for the
current shell only: `eval "$(rollout --show-completion bash)"`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
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


def root_of(ctx: typer.Context | None) -> Path:
    """The inventory root the command line being completed names, else the environment's/default."""
    try:
        given = ctx.find_root().params.get("inventory_root") if ctx is not None else None
    except Exception:  # completion never fails loudly
        given = None
    return Path(given) if given else _root()


def complete_region(ctx: typer.Context, incomplete: str) -> list[str]:
    return [r for r in regions(root_of(ctx)) if r.startswith(incomplete)]


def complete_node(ctx: typer.Context, incomplete: str) -> list[str]:
    return [n for n in nodes(root_of(ctx)) if n.startswith(incomplete)]
