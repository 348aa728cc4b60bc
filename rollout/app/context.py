"""The settings every use case shares (inventory root, state dir), passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rollout.paths import default_inventory_root, default_state_dir


@dataclass(frozen=True)
class Context:
    inventory_root: Path = field(default_factory=default_inventory_root)
    state_dir: Path = field(default_factory=default_state_dir)
    debug: bool = False
