"""Use cases `validate` and `plan`: load the region, observe (or read a recording), decide.

Invariant: planning changes nothing anywhere; it may read files and (later) query read-only
collectors, then calls the pure planner.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rollout.app.context import Context
from rollout.errors import ConfigError
from rollout.inventory import RegionSource, load_region
from rollout.model.observation import Observation, unknown
from rollout.model.plan import Plan
from rollout.model.region import Method
from rollout.observe.recorded import load_observation
from rollout.paths import project_dir
from rollout.planner.plan import PlanRequest, make_plan


@dataclass(frozen=True)
class PlanResult:
    source: RegionSource
    observation: Observation
    plan: Plan


def load(ctx: Context, region: str, *, cached: bool = True) -> RegionSource:
    return load_region(ctx.inventory_root, region, cache_dir=ctx.state_dir / "cache" if cached else None)


def content_revision(root: Path | None = None) -> str:
    """Hash of roles/ and playbooks/ (what every node's configuration is made of)."""
    base = root or project_dir()
    digest = hashlib.sha256()
    for sub in ("roles", "playbooks"):
        top = base / sub
        if not top.is_dir():
            continue
        for path in sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(base)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def node_revisions(source: RegionSource, content: str) -> dict[str, str]:
    """Per node: hash of its non-secret variables + the role content. Changes => `configure`."""
    out: dict[str, str] = {}
    for node in source.region.nodes:
        raw = json.dumps(source.node_vars(node.name), sort_keys=True) + content
        out[node.name] = hashlib.sha256(raw.encode()).hexdigest()[:12]
    return out


def resolve_limit(source: RegionSource, pattern: str | None) -> frozenset[str] | None:
    """Ansible limit syntax (`rack_r1:!ex-r1-n02`, `hc_t4`, `ex-r*`) resolved by ansible-core itself."""
    if not pattern:
        return None
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    inventory = InventoryManager(loader=DataLoader(), sources=[str(source.hosts_file)])
    inventory.subset(pattern)
    names = {h.name for h in inventory.get_hosts("all")} & {n.name for n in source.region.nodes}
    if not names:
        raise ConfigError(f"--limit `{pattern}` matches no node of region {source.region.name}",
                          hint="use host names, group names (hc_t4, rack_r1) or patterns, as with ansible --limit")
    return frozenset(names)


def plan_region(
    ctx: Context,
    region: str,
    *,
    observed: Path | None = None,
    limit: str | None = None,
    reimage: frozenset[str] = frozenset(),
    method: Method | None = None,
    now: datetime | None = None,
    live: bool = False,
) -> PlanResult:
    """`live`: observe the region first, as `apply` does (ignored for a region on paper and with `observed`)."""
    source = load(ctx, region)
    names = {n.name for n in source.region.nodes}
    unknown_nodes = sorted(reimage - names)
    if unknown_nodes:
        raise ConfigError(f"node `{unknown_nodes[0]}` is not in region {region}",
                          hint=f"see `rollout plan --region {region}` for its nodes")
    if observed:
        observation = load_observation(observed, region, names)
    elif live and not source.region.offline:
        from rollout.app.observing import observe_live

        observation = observe_live(ctx, source, "plan")
    else:
        observation = unknown(region)
    request = PlanRequest(
        limit=resolve_limit(source, limit),
        limit_pattern=limit,
        reimage=reimage,
        desired_revisions=node_revisions(source, content_revision()),
        method_override=method,
    )
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plan = make_plan(source.region, observation, request, stamp)
    return PlanResult(source=source, observation=observation, plan=plan)
