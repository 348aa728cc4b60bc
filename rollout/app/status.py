"""Use cases `status` and node lookup: read the journal and the inventory, never the network."""

from __future__ import annotations

from typing import Any

from rollout.app.context import Context
from rollout.errors import ConfigError
from rollout.executor.resume import quarantined, unfinished_operations
from rollout.inventory import list_regions, load_region
from rollout.journal import Journal, journal_path
from rollout.lock import RegionLock


def find_region_of(ctx: Context, node: str) -> str:
    """The region whose inventory lists `node` (so on-call can type just the node name)."""
    found = []
    for name in list_regions(ctx.inventory_root):
        try:
            source = load_region(ctx.inventory_root, name)
        except ConfigError:
            continue
        if any(n.name == node for n in source.region.nodes):
            found.append(name)
    if len(found) != 1:
        where = f"regions {', '.join(found)}" if found else "no region"
        raise ConfigError(f"node `{node}` is in {where} under {ctx.inventory_root}",
                          hint="pass --region R")
    return found[0]


def region_status(ctx: Context, region: str) -> dict[str, Any]:
    source = load_region(ctx.inventory_root, region, cache_dir=ctx.state_dir / "cache")
    nodes: list[dict[str, Any]] = []
    lock_doc = None
    last_run = None
    if journal_path(ctx.state_dir, region).exists():
        with Journal.open(region, ctx.state_dir) as journal:
            transitions = journal.transitions()
            last = journal.last_transitions()
            quarantine = quarantined(transitions)
            unfinished = unfinished_operations(transitions)
            st = RegionLock(journal).status()
            if st.holder is not None:
                lock_doc = {"holder": st.holder.describe(), "lock_id": st.holder.lock_id, "stale": st.stale,
                            "run_id": st.holder.run_id}
            runs = journal.runs(limit=1)
            if runs:
                r = runs[0]
                last_run = {"run_id": r.run_id, "user": r.user, "host": r.host, "started": r.started,
                            "ended": r.ended, "outcome": r.outcome, "reason": r.reason or ""}
    else:
        last, quarantine, unfinished = {}, {}, {}
    for n in source.region.nodes:
        t = last.get(n.name)
        pending = unfinished.get(n.name)
        nodes.append({
            "node": n.name, "node_class": n.node_class, "rack": n.failure_domain,
            "desired_method": source.region.method.value,
            "step": t.step if t else None, "status": t.status if t else None, "at": t.ts if t else None,
            "summary": t.summary if t else "", "quarantined": quarantine.get(n.name),
            "unfinished": ({"action": pending.action, "run_id": pending.run_id,
                            "done": sorted(pending.done_steps)} if pending else None),
        })
    return {"schema": "rollout.status/v1", "region": region, "lock": lock_doc, "last_run": last_run,
            "nodes": nodes}
