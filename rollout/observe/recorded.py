"""Observation from a recorded JSON file (`rollout plan --observed FILE`).

Format (schema `rollout.observation/v1`), all fields optional except `nodes[].name`:

    {"schema": "rollout.observation/v1", "region": "example", "observed_at": "2026-11-29T10:00:00Z",
     "nodes": [{"name": "ex-r1-n01", "managed_by": "ansible", "config_revision": "3f2a...",
                "healthy": true, "bmh_state": null, "quarantined": null}],
     "ceph": {"pgs_total": 512, "pgs_active_clean": 512, "osds_down": [], "noout_groups": []}}

Invariant: a malformed file is a ConfigError naming the file and the field; never a traceback.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from rollout.errors import ConfigError
from rollout.model.observation import CephObservation, NodeObservation, Observation

SCHEMA = "rollout.observation/v1"
_MANAGED_BY = (None, "ansible", "capi", "none")


def load_observation(path: Path, region: str, known_nodes: set[str]) -> Observation:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the observation file: {exc.strerror}",
                          hint="pass an existing file to --observed") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}",
                          hint="record it with `rollout observe --region R -o json > FILE`") from exc
    return parse_observation(doc, str(path), region, known_nodes)


def parse_observation(doc: Any, source: str, region: str, known_nodes: set[str]) -> Observation:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ConfigError(f"{source}: field `schema` must be `{SCHEMA}`", hint="see `rollout plan --help`")
    if doc.get("region", region) != region:
        raise ConfigError(f"{source}: field `region` is `{doc.get('region')}`, expected `{region}`",
                          hint="pass the observation recorded for this region")
    allowed = {f.name for f in fields(NodeObservation)}
    nodes: list[NodeObservation] = []
    for i, raw in enumerate(doc.get("nodes") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise ConfigError(f"{source}: nodes[{i}].name is missing", hint="every node entry needs a name")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise ConfigError(f"{source}: nodes[{i}] ({raw['name']}): unknown field `{unknown[0]}`",
                              hint=f"allowed: {', '.join(sorted(allowed))}")
        if raw["name"] not in known_nodes:
            raise ConfigError(f"{source}: nodes[{i}].name `{raw['name']}` is not a node of region {region}",
                              hint="record the observation again, or fix the inventory")
        if raw.get("managed_by") not in _MANAGED_BY:
            raise ConfigError(f"{source}: nodes[{i}] ({raw['name']}): field `managed_by` is "
                              f"`{raw.get('managed_by')}`", hint="use ansible, capi, none or null")
        values = dict(raw)
        values["osds_down"] = tuple(values.get("osds_down") or ())
        nodes.append(NodeObservation(**values))
    ceph = None
    if isinstance(doc.get("ceph"), dict):
        c = doc["ceph"]
        ceph = CephObservation(pgs_total=int(c.get("pgs_total", 0)), pgs_active_clean=int(c.get("pgs_active_clean", 0)),
                               osds_down=tuple(c.get("osds_down") or ()),
                               noout_groups=tuple(c.get("noout_groups") or ()), health=c.get("health"))
    return Observation(region=region, observed_at=doc.get("observed_at"), nodes=tuple(nodes), ceph=ceph,
                       sources=(f"recorded:{Path(source).name}",))
