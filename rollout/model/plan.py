"""A plan: per-node actions with reasons, and the order the scheduler would take them in.

Invariants:
- Every node of the region appears exactly once in `Plan.actions`.
- `kind == NONE` <=> `skip_reason` is set; any other kind has a non-empty `reason`.
- `position` is 1-based over the nodes that change, in the order failure domain by failure domain;
  nodes left alone have `position == 0`.
- The plan is a pure value: serialising it (`rollout.render.plan_json`) never needs I/O or secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

PLAN_SCHEMA = "rollout.plan/v1"


class ActionKind(StrEnum):
    PROVISION = "provision"
    CONFIGURE = "configure"
    REIMAGE = "reimage"
    MIGRATE_TO_CAPI = "migrate-to-capi"
    MIGRATE_TO_ANSIBLE = "migrate-to-ansible"
    NONE = "none"

    @property
    def rewrites_os_disk(self) -> bool:
        """Actions that write the OS disk (never the OSD disks)."""
        return self in (
            ActionKind.PROVISION,
            ActionKind.REIMAGE,
            ActionKind.MIGRATE_TO_CAPI,
            ActionKind.MIGRATE_TO_ANSIBLE,
        )

    @property
    def disrupts_node(self) -> bool:
        """Actions that take the node (and its OSDs) out of service."""
        return self.rewrites_os_disk


@dataclass(frozen=True)
class Action:
    node: str
    kind: ActionKind
    reason: str
    failure_domain: str
    node_class: str
    desired_method: str
    observed_method: str | None
    skip_reason: str | None = None
    position: int = 0
    steps: tuple[str, ...] = ()
    gpu_model: str | None = None


@dataclass(frozen=True)
class Plan:
    region: str
    desired_method: str
    generated_at: str
    observation_digest: str
    observation_sources: tuple[str, ...]
    actions: tuple[Action, ...]
    domain_order: tuple[str, ...]
    max_in_flight: int
    refusals: tuple[str, ...] = ()
    limit: str | None = None
    inventory_revision: str = ""

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(sorted((a for a in self.actions if a.kind is not ActionKind.NONE), key=lambda a: a.position))

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def action(self, node: str) -> Action:
        for a in self.actions:
            if a.node == node:
                return a
        raise KeyError(node)
