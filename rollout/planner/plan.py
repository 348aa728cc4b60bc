"""`plan(desired, observed, policy, now)`: one action per node, each with its reason.

Invariants:
- Pure: same region, observation, requests and `now` -> the same Plan (deterministic ordering).
- Every node of the region gets exactly one Action; nodes left alone carry a `skip_reason`.
- Method is never remembered: the current method comes from the Observation (`managed_by`);
  a migration is simply the action when desired != observed.
- Order: changed nodes are listed failure domain by failure domain (domains by name, nodes by name);
  the executor's scheduler may start a domain's nodes concurrently but never two domains' disruptive
  actions at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rollout.model.observation import NodeObservation, Observation
from rollout.model.plan import PLAN_SCHEMA, Action, ActionKind, Plan
from rollout.model.region import Method, Node, Region

__all__ = ["PLAN_SCHEMA", "PlanRequest", "make_plan", "steps_for"]


@dataclass(frozen=True)
class PlanRequest:
    """What the operator asked for, beyond region.yml."""

    limit: frozenset[str] | None = None  # resolved host names; None = every node
    limit_pattern: str | None = None  # as typed, for display
    reimage: frozenset[str] = frozenset()  # nodes the operator wants re-imaged
    desired_revisions: Mapping[str, str] = field(default_factory=dict)  # node -> config revision
    method_override: Method | None = None  # `rollout migrate --to`
    force_configure: bool = False  # `rollout apply --force-configure`: re-run site.yml on up-to-date nodes


def steps_for(kind: ActionKind, method: Method, has_workload: bool) -> tuple[str, ...]:
    """The phase sequence an action goes through (ARCHITECTURE.md section 3)."""
    drain = ("cordon-drain",) if has_workload else ()
    undrain = ("uncordon",) if has_workload else ()
    fence = ("storage-fence",)
    unfence = ("storage-unfence",)
    if kind is ActionKind.NONE:
        return ()
    if kind is ActionKind.CONFIGURE:
        if method is Method.CAPI:
            return ("precheck", "apply-manifests", "verify")
        return ("precheck", "configure", "verify")
    if kind is ActionKind.PROVISION:
        if method is Method.CAPI:
            return ("precheck", "ensure-bmh", "scale-machinedeployment", "wait-node-ready", "verify")
        return ("precheck", "reprovision", "configure", "verify")
    if kind is ActionKind.REIMAGE:
        if method is Method.CAPI:
            return ("precheck", *drain, *fence, "replace-machine", "wait-node-ready", "reactivate-osds",
                    "verify", *unfence, *undrain)
        return ("precheck", *drain, *fence, "reprovision", "configure", "verify", *unfence, *undrain)
    if kind is ActionKind.MIGRATE_TO_CAPI:
        return ("precheck", "capi-preflight", *drain, *fence, "delete-node-object", "ensure-bmh",
                "scale-machinedeployment", "wait-node-ready", "reactivate-osds", "verify", *unfence, *undrain)
    if kind is ActionKind.MIGRATE_TO_ANSIBLE:
        return ("precheck", *drain, *fence, "detach-bmh", "remove-machine", "delete-bmh", "reprovision",
                "configure", "verify", *unfence, *undrain)
    raise ValueError(kind)


def _decide(
    node: Node, obs: NodeObservation, desired: Method, request: PlanRequest, unknown: bool
) -> tuple[ActionKind, str]:
    """(kind, reason); kind NONE means the reason is a skip reason."""
    if request.limit is not None and node.name not in request.limit:
        return ActionKind.NONE, f"outside --limit {request.limit_pattern or ''}".rstrip()
    if obs.quarantined:
        return ActionKind.NONE, (
            f"quarantined: {obs.quarantined} (inspect with `rollout explain {node.name}`; "
            f"`rollout reimage {node.name}` or `rollout apply --retry {node.name}` to take it again)"
        )
    observed = obs.managed_by
    if node.name in request.reimage:
        if observed is not None and observed not in ("none", desired.value):
            target = ActionKind.MIGRATE_TO_CAPI if desired is Method.CAPI else ActionKind.MIGRATE_TO_ANSIBLE
            return target, f"re-image requested; node is {observed}-managed, region wants {desired.value}"
        return ActionKind.REIMAGE, "re-image requested by the operator"
    if unknown or observed is None:
        if desired is Method.CAPI:
            return ActionKind.CONFIGURE, (
                "observed state unknown: re-apply the node's manifests (server-side apply is idempotent)"
            )
        return ActionKind.CONFIGURE, "observed state unknown: run site.yml (idempotent) and verify"
    if observed == "none":
        return ActionKind.PROVISION, f"not provisioned yet; bring it up with the {desired.value} method"
    if observed != desired.value:
        kind = ActionKind.MIGRATE_TO_CAPI if desired is Method.CAPI else ActionKind.MIGRATE_TO_ANSIBLE
        where = "the inventory (rollout_method)" if node.method is not None else "region.yml"
        return kind, f"managed by {observed}, {where} wants {desired.value}"
    if obs.healthy is False:
        return ActionKind.CONFIGURE, "last verify failed: configure again and re-verify"
    want = request.desired_revisions.get(node.name)
    if want and obs.config_revision != want:
        have = obs.config_revision or "none"
        if desired is Method.CAPI:
            return ActionKind.REIMAGE, (
                f"node configuration changed ({have} -> {want}); CAPI nodes are immutable, replace in place"
            )
        if obs.config_revision is None:
            return ActionKind.CONFIGURE, f"never configured by rollout (no applied-revision marker): to {want}"
        return ActionKind.CONFIGURE, f"node configuration changed ({have} -> {want})"
    if desired is Method.CAPI and obs.node_ready is False:
        return ActionKind.REIMAGE, "CAPI node not Ready: replace it in place"
    if request.force_configure:
        return ActionKind.CONFIGURE, "up to date, but --force-configure asks to re-run the configuration"
    return ActionKind.NONE, f"up to date ({desired.value}, revision {obs.config_revision or 'unknown'}, verified)"


def _refusals(region: Region, desired: Method, kinds: Mapping[str, ActionKind], any_capi: bool = False) -> list[str]:
    out: list[str] = []
    needs_capi = any(
        k in (ActionKind.MIGRATE_TO_CAPI, ActionKind.MIGRATE_TO_ANSIBLE) or
        ((desired is Method.CAPI or any_capi) and k is not ActionKind.NONE)
        for k in kinds.values()
    )
    if needs_capi and not region.clusters.has_management:
        out.append("the plan needs Cluster API but region.yml has no clusters.management (kubeconfig)")
    if desired is Method.CAPI and any(k is not ActionKind.NONE for k in kinds.values()):
        if region.image is None:
            out.append("method capi needs `image` (url, checksum) in region.yml")
        if not region.clusters.has_workload:
            out.append("method capi needs clusters.workload (the cluster the nodes join)")
    return out


def make_plan(region: Region, observation: Observation, request: PlanRequest, now: str) -> Plan:
    """Decide per node. `now` is an ISO-8601 timestamp supplied by the caller (no clock here)."""
    region_desired = request.method_override or region.method
    unknown = observation.is_unknown

    def desired_of(node: Node) -> Method:
        # `rollout migrate --to` overrides everything; else a node's own `rollout_method` (a region
        # half-migrated for weeks), else region.yml's method.
        return request.method_override or node.method or region.method

    decided: dict[str, tuple[ActionKind, str]] = {
        n.name: _decide(n, observation.node(n.name), desired_of(n), request, unknown) for n in region.nodes
    }
    desired = region_desired
    domain_order = region.failure_domains
    by_domain = sorted(region.nodes, key=lambda n: (domain_order.index(n.failure_domain), n.name))
    actions: list[Action] = []
    position = 0
    for node in by_domain:
        kind, why = decided[node.name]
        obs = observation.node(node.name)
        if kind is ActionKind.NONE:
            actions.append(Action(node=node.name, kind=kind, reason="", skip_reason=why,
                                  failure_domain=node.failure_domain, node_class=node.node_class,
                                  desired_method=desired_of(node).value, observed_method=obs.managed_by,
                                  gpu_model=node.gpu_model))
            continue
        position += 1
        actions.append(Action(node=node.name, kind=kind, reason=why, failure_domain=node.failure_domain,
                              node_class=node.node_class, desired_method=desired_of(node).value,
                              observed_method=obs.managed_by, position=position,
                              steps=steps_for(kind, desired_of(node), region.clusters.has_workload),
                              gpu_model=node.gpu_model))
    largest_domain = max((sum(1 for n in region.nodes if n.failure_domain == d) for d in domain_order), default=0)
    return Plan(
        region=region.name,
        desired_method=desired.value,
        generated_at=now,
        observation_digest=observation.digest(),
        observation_sources=observation.sources,
        actions=tuple(sorted(actions, key=lambda a: a.node)),
        domain_order=domain_order,
        max_in_flight=min(region.policy.max_unavailable, largest_domain),
        refusals=tuple(_refusals(region, desired, {k: v[0] for k, v in decided.items()},
                                 any(desired_of(n) is Method.CAPI for n in region.nodes))),
        limit=request.limit_pattern,
    )
