"""Read-only view of the region's workload cluster: Nodes (Ready, labels, unschedulable, providerID).

Invariants:
- `parse_node` is pure (recorded JSON dict in, frozen dataclass out); `ready` is None when the Node
  has no Ready condition yet (a kubelet that never reported), never guessed as False.
- The collector only lists Nodes, with the official client's DynamicClient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

METAL3_UUID_LABEL = "metal3.io/uuid"


@dataclass(frozen=True)
class WorkloadNode:
    name: str
    ready: bool | None
    unschedulable: bool
    provider_id: str | None
    labels: tuple[tuple[str, str], ...]
    taints: tuple[tuple[str, str], ...]  # (key, effect)
    kubelet_version: str | None
    deleting: bool

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)

    @property
    def metal3_uuid(self) -> str | None:
        """BMH uid the kubelet registered with; CAPM3 matches Nodes to hosts by it."""
        return self.label(METAL3_UUID_LABEL)


def parse_node(obj: Mapping[str, Any]) -> WorkloadNode:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    ready: bool | None = None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = cond.get("status") == "True"
    return WorkloadNode(
        name=meta.get("name", ""),
        ready=ready,
        unschedulable=bool(spec.get("unschedulable")),
        provider_id=spec.get("providerID"),
        labels=tuple(sorted((str(k), str(v)) for k, v in (meta.get("labels") or {}).items())),
        taints=tuple((t.get("key", ""), t.get("effect", "")) for t in spec.get("taints") or []),
        kubelet_version=(status.get("nodeInfo") or {}).get("kubeletVersion"),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def parse_nodes(doc: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> tuple[WorkloadNode, ...]:
    items = doc.get("items") or [] if isinstance(doc, Mapping) else list(doc)
    return tuple(sorted((parse_node(o) for o in items), key=lambda n: n.name))


def collect_nodes(dyn: Any, label_selector: str | None = None) -> tuple[WorkloadNode, ...]:
    """List the workload cluster's Nodes. `dyn` is a DynamicClient for the workload cluster."""
    nodes = dyn.resources.get(api_version="v1", kind="Node")
    result = nodes.get(label_selector=label_selector)
    return parse_nodes([item.to_dict() for item in result.items])


__all__ = ["METAL3_UUID_LABEL", "WorkloadNode", "collect_nodes", "parse_node", "parse_nodes"]
