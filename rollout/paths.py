"""Where rollout finds its own content (roles, playbooks, capi templates) and keeps state.

Invariant: the project directory is the one holding `roles/` and `playbooks/`: `ROLLOUT_PROJECT_DIR`
when set, else the source checkout this package was imported from.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_dir() -> Path:
    env = os.environ.get("ROLLOUT_PROJECT_DIR")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def default_inventory_root() -> Path:
    env = os.environ.get("ROLLOUT_INVENTORY_ROOT")
    return Path(env) if env else Path("inventories")


def default_state_dir() -> Path:
    env = os.environ.get("ROLLOUT_STATE_DIR")
    return Path(env) if env else Path(".rollout")
