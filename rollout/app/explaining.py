"""Use cases `explain NODE` and `history`: answer "why did (or didn't) rollout touch this node?".

Read-only: the journal, the inventory, and (unless offline) the same read-only observation `apply`
makes. Nothing here takes the region lock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from rollout.app.context import Context
from rollout.app.observing import observe_live
from rollout.app.planning import content_revision, node_revisions
from rollout.errors import ConfigError
from rollout.executor.resume import quarantined, unfinished_operations
from rollout.inventory import load_region
from rollout.journal import Journal, journal_path
from rollout.model.observation import unknown
from rollout.model.plan import ActionKind
from rollout.planner.plan import PlanRequest, make_plan


def _journal_facts(ctx: Context, region: str, node: str | None) -> tuple[list[Any], list[Any]]:
    if not journal_path(ctx.state_dir, region).exists():
        return [], []
    with Journal.open(region, ctx.state_dir) as journal:
        return journal.transitions(node=node), journal.runs()


def explain_node(ctx: Context, region: str, node: str, *, offline: bool) -> dict[str, Any]:
    source = load_region(ctx.inventory_root, region, cache_dir=ctx.state_dir / "cache")
    if node not in {n.name for n in source.region.nodes}:
        raise ConfigError(f"node `{node}` is not in region {region}",
                          hint=f"`rollout status --region {region}` lists its nodes")
    transitions, _ = _journal_facts(ctx, region, node)
    quarantine = quarantined(transitions).get(node)
    pending = unfinished_operations(transitions).get(node)
    paper = source.region.offline  # a region on paper is never contacted
    why_not_observed = "--offline" if offline else "region.yml says `offline: true`" if paper else None
    offline = offline or paper
    observation = unknown(region) if offline else observe_live(ctx, source, "explain")
    if quarantine:
        observation = replace(observation, nodes=tuple(
            replace(n, quarantined=quarantine) if n.name == node else n for n in observation.nodes)
            or (replace(observation.node(node), quarantined=quarantine),))
    plan = make_plan(source.region, observation, PlanRequest(
        desired_revisions=node_revisions(source, content_revision())), datetime.now().strftime("%Y-%m-%dT%H:%M:%SZ"))
    action = plan.action(node)
    obs = observation.node(node)
    if paper:
        next_cmd = f"rollout plan --region {region} --limit {node}   (a region on paper: plan and render only)"
    elif pending:
        next_cmd = f"rollout apply --region {region}   (resumes the unfinished {pending.action})"
    elif quarantine:
        next_cmd = f"fix the cause above, then `rollout apply --region {region} --retry {node}` " \
                   f"(or `rollout reimage {node} --reason ...`)"
    elif action.kind is ActionKind.NONE:
        next_cmd = f"nothing to do; `rollout reimage {node} --reason ...` if the node misbehaves"
    else:
        next_cmd = f"rollout apply --region {region} --limit {node}"
    return {
        "schema": "rollout.explain/v1",
        "region": region,
        "node": node,
        "desired_method": plan.desired_method,
        "observed_method": obs.managed_by,
        "observed_from": list(observation.sources),
        "not_observed_because": why_not_observed,
        "action": action.kind.value,
        "reason": action.reason or action.skip_reason,
        "quarantined": quarantine,
        "unfinished": ({"action": pending.action, "run_id": pending.run_id,
                        "done": [s for s in pending.steps if s in pending.done_steps],
                        "open_step": pending.open_step} if pending else None),
        "journal": [{"run_id": t.run_id, "at": t.ts, "step": t.step, "kind": t.kind.value, "status": t.status,
                     "summary": t.summary} for t in transitions[-12:]],
        "next": next_cmd,
    }


def _duration(start: str, end: str | None) -> str:
    if not end:
        return "-"
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def history(ctx: Context, region: str, node: str | None) -> dict[str, Any]:
    load_region(ctx.inventory_root, region, cache_dir=ctx.state_dir / "cache")  # validates name + inventory
    transitions, runs = _journal_facts(ctx, region, node)
    touched: dict[str, set[str]] = {}
    for t in transitions:
        if t.node != "(region)":
            touched.setdefault(t.run_id, set()).add(t.node)
    rows = []
    for r in runs:
        if node is not None and r.run_id not in touched:
            continue
        rows.append({"run_id": r.run_id, "user": r.user, "host": r.host, "command": r.command,
                     "started": r.started, "ended": r.ended, "duration": _duration(r.started, r.ended),
                     "outcome": r.outcome or "unfinished (killed or still running)", "reason": r.reason or "",
                     "nodes": sorted(touched.get(r.run_id, ()))})
    steps = [{"run_id": t.run_id, "at": t.ts, "step": t.step, "kind": t.kind.value, "status": t.status,
              "summary": t.summary} for t in transitions] if node else []
    return {"schema": "rollout.history/v1", "region": region, "node": node, "runs": rows, "steps": steps}
