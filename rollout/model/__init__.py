"""Frozen, typed model of a region and of what rollout decides about it.

Invariants:
- Every object here is immutable (frozen dataclasses, tuples, MappingProxy-free plain tuples of pairs),
  so a Region loaded once can be shared by the planner, the renderer and the executor without copies.
- No I/O and no client libraries: `model` imports only the standard library (enforced by import-linter).
- Secrets never live in these objects. A node names its BMC credentials by reference
  (`BmcSpec.credentials`); values are resolved by backends from Ansible Vault when they are needed.
"""

from rollout.model.observation import CephObservation, NodeObservation, Observation
from rollout.model.plan import PLAN_SCHEMA, Action, ActionKind, Plan
from rollout.model.region import (
    BmcSpec,
    ClusterSettings,
    GpuSpec,
    ImageSpec,
    Interface,
    Method,
    Node,
    NodeClass,
    OsdDevice,
    OvnSpec,
    Policy,
    Region,
    Timeouts,
)

__all__ = [
    "PLAN_SCHEMA",
    "Action",
    "ActionKind",
    "BmcSpec",
    "CephObservation",
    "ClusterSettings",
    "GpuSpec",
    "ImageSpec",
    "Interface",
    "Method",
    "Node",
    "NodeClass",
    "NodeObservation",
    "Observation",
    "OsdDevice",
    "OvnSpec",
    "Plan",
    "Policy",
    "Region",
    "Timeouts",
]
