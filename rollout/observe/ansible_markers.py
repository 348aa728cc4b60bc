"""Parse what `rollout/playbooks/observe.yml` fetched: per node, the applied-configuration marker.

Pure. A reachable node without a marker is reported as Ansible-managed with no revision (it runs
and was configured by someone): rollout then plans an idempotent `configure`, never a re-install.
Only a BareMetalHost (CAPI observers) can say a node was never provisioned (`managed_by="none"`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rollout.model.observation import NodeObservation


def node_observations(
    nodes: Iterable[str],
    markers: Mapping[str, Mapping[str, str]],
    unreachable: Iterable[str],
    quarantined: Mapping[str, str],
) -> tuple[NodeObservation, ...]:
    down = set(unreachable)
    out = []
    for name in sorted(nodes):
        marker = markers.get(name)
        if name in down:
            out.append(NodeObservation(name=name, managed_by=None, reachable=False,
                                       quarantined=quarantined.get(name)))
            continue
        out.append(NodeObservation(
            name=name,
            managed_by=(marker or {}).get("method", "ansible"),
            config_revision=(marker or {}).get("revision") or None,
            healthy=True if marker else None,
            reachable=True,
            quarantined=quarantined.get(name),
        ))
    return tuple(out)
