"""The plan as a versioned JSON document (`rollout plan -o json`), and back.

Invariant: `plan_from_json(plan_to_json(p)) == p`, so a saved plan can be applied later and compared
with a fresh one (its `observation_digest` tells whether the world changed in between).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from rollout.errors import ConfigError
from rollout.model.plan import PLAN_SCHEMA, Action, ActionKind, Plan


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    doc = asdict(plan)
    doc = {"schema": PLAN_SCHEMA, **doc}
    for a in doc["actions"]:
        a["kind"] = str(a["kind"])
        a["action"] = a.pop("kind")
    doc["summary"] = {
        kind.value: sum(1 for a in plan.actions if a.kind is kind) for kind in ActionKind
    }
    return doc


def plan_to_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, sort_keys=False) + "\n"


def plan_from_json(text: str, source: str = "<plan>") -> Plan:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}:{exc.lineno}: not a plan file ({exc.msg})",
                          hint="save one with `rollout plan --region R -o json > plan.json`") from exc
    if not isinstance(doc, dict) or doc.get("schema") != PLAN_SCHEMA:
        raise ConfigError(f"{source}: field `schema` is not `{PLAN_SCHEMA}`",
                          hint="make the plan again with this version of rollout")
    try:
        actions = tuple(
            Action(node=a["node"], kind=ActionKind(a["action"]), reason=a["reason"],
                   failure_domain=a["failure_domain"], node_class=a["node_class"],
                   desired_method=a["desired_method"], observed_method=a["observed_method"],
                   skip_reason=a.get("skip_reason"), position=int(a.get("position", 0)),
                   steps=tuple(a.get("steps") or ()), gpu_model=a.get("gpu_model"))
            for a in doc["actions"]
        )
        return Plan(region=doc["region"], desired_method=doc["desired_method"], generated_at=doc["generated_at"],
                    observation_digest=doc["observation_digest"],
                    observation_sources=tuple(doc.get("observation_sources") or ()), actions=actions,
                    domain_order=tuple(doc["domain_order"]), max_in_flight=int(doc["max_in_flight"]),
                    refusals=tuple(doc.get("refusals") or ()), limit=doc.get("limit"),
                    inventory_revision=doc.get("inventory_revision", ""))
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigError(f"{source}: malformed plan ({exc})", hint="make the plan again") from exc
