"""Observed state of a region: what the collectors in `rollout.observe` saw, at one moment.

Invariants:
- Observation is never remembered intent: a node's current method is *derived* from what was seen
  (a BareMetalHost with a consumer means CAPI-managed; a node answering SSH with rollout's identity
  marker and no BMH means Ansible-managed). `managed_by=None` means "not observed" and the planner says so.
- `digest()` is a stable hash of the observation's content, so a saved plan can be refused when the
  world changed since it was made.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class NodeObservation:
    name: str
    managed_by: str | None = None  # "ansible" | "capi" | "none" (never provisioned) | None (unknown)
    config_revision: str | None = None  # revision of the node config last applied and verified
    healthy: bool | None = None  # verify.yml / Node Ready, None when unknown
    reachable: bool | None = None
    bmh_state: str | None = None  # BareMetalHost status.provisioning.state
    bmh_operational_status: str | None = None
    bmh_consumer: str | None = None
    machine: str | None = None  # Machine name when CAPI-managed
    node_ready: bool | None = None  # workload-cluster Node Ready condition
    unschedulable: bool | None = None
    quarantined: str | None = None  # reason from the journal, when quarantined
    osds_down: tuple[int, ...] = ()


@dataclass(frozen=True)
class CephObservation:
    pgs_total: int = 0
    pgs_active_clean: int = 0
    osds_down: tuple[int, ...] = ()
    noout_groups: tuple[str, ...] = ()  # hosts / buckets with `noout` set via set-group
    health: str | None = None  # HEALTH_OK | HEALTH_WARN | HEALTH_ERR (informational only)

    @property
    def all_active_clean(self) -> bool:
        return self.pgs_total > 0 and self.pgs_total == self.pgs_active_clean


@dataclass(frozen=True)
class Observation:
    region: str
    observed_at: str | None = None  # ISO-8601, from the collector's clock
    nodes: tuple[NodeObservation, ...] = ()
    ceph: CephObservation | None = None
    sources: tuple[str, ...] = ()  # which collectors contributed ("recorded:FILE", "kube", "ceph", ...)

    def node(self, name: str) -> NodeObservation:
        for n in self.nodes:
            if n.name == name:
                return n
        return NodeObservation(name=name)

    @property
    def is_unknown(self) -> bool:
        return not self.nodes and self.ceph is None

    def digest(self) -> str:
        payload = asdict(self)
        payload.pop("observed_at", None)
        raw = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def unknown(region: str) -> Observation:
    """The observation used when nothing was observed (`rollout plan` without --observed)."""
    return Observation(region=region, sources=("unknown",))


__all__ = ["CephObservation", "NodeObservation", "Observation", "field", "unknown"]
