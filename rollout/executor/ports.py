"""What the engine needs from the outside world, as Protocols (real: steps_ansible.py; tests: fakes).

Invariants:
- A StepRunner's `run` performs exactly one step's side effect for one node and returns a short,
  secret-free summary; it raises a RolloutError (TransientError, PermanentError, SafetyRefused) on
  failure. Steps are idempotent except `reprovision`, which the engine fences (see engine.py).
- `rescue` undoes what a completed step leaves behind when the node fails later (unset noout,
  uncordon); it must be safe to call more than once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Event
from typing import Protocol

from rollout.model.plan import Action
from rollout.model.region import Node


class Interrupted(Exception):
    """The operator stopped the run (Ctrl-C) while a step was waiting: not a failure of the node. The engine
    runs the node's rescues and journals the operation `interrupted`; `rollout apply` resumes it."""


# Steps that leave something behind that a failure must undo, and the rescue that undoes it.
RESCUES: dict[str, str] = {"storage-fence": "storage-unfence", "cordon-drain": "uncordon"}
# Steps before the storage gate: the node is being prepared, its OSDs are still up.
PREP_STEPS = frozenset({"precheck", "cordon-drain", "capi-preflight"})
# The step after which the node no longer needs a provisioning slot (image written / machine back).
SLOT_RELEASE_STEPS = frozenset({"reprovision", "wait-node-ready"})
# The one step that is not idempotent: a re-install must never be issued twice.
REINSTALL_STEP = "reprovision"


@dataclass
class StepContext:
    run_id: str
    node: Node
    action: Action
    stop: Event
    say: Callable[[str], None]  # live progress line for this node (no secrets)
    note: Callable[[str, str, str], None]  # journal note (step, status, summary)
    extra: dict[str, str] = field(default_factory=dict)


class StepRunner(Protocol):
    def run(self, step: str, ctx: StepContext) -> str: ...

    def rescue(self, step: str, ctx: StepContext) -> str: ...

    def reinstall_marker(self, ctx: StepContext) -> str:
        """An observable that changes when the node is re-installed (e.g. SSH host key fingerprint)."""
        ...

    def reinstall_happened(self, ctx: StepContext, marker: str, *, wait: float) -> bool:
        """Whether the observable differs from `marker`, waiting up to `wait` seconds for it to."""
        ...


class CephGate(Protocol):
    def all_active_clean(self) -> bool: ...

    def ok_to_stop(self, node: Node) -> bool: ...
