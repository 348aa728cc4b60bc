"""The plan for people: a terraform-like listing with a blast-radius header.

Invariant: the text is derived only from the Plan and Region (no I/O), so it is golden-testable.
"""

from __future__ import annotations

from collections import Counter

from rollout.model.plan import Action, ActionKind, Plan
from rollout.model.region import Region

_SYMBOL = {
    ActionKind.PROVISION: "+",
    ActionKind.CONFIGURE: "~",
    ActionKind.REIMAGE: "-/+",
    ActionKind.MIGRATE_TO_CAPI: ">>",
    ActionKind.MIGRATE_TO_ANSIBLE: "<<",
    ActionKind.NONE: " ",
}


def blast_radius(plan: Plan, region: Region) -> list[str]:
    changes = plan.changes
    disruptive = [a for a in changes if a.kind.disrupts_node]
    osds = sum(len(region.node(a.node).osd_devices) for a in disruptive)
    gpus = Counter(a.gpu_model for a in disruptive if a.gpu_model)
    policy = region.policy
    lines = [
        f"Region {plan.region}: {len(region.nodes)} nodes in {len(region.failure_domains)} failure domains "
        f"({region.failure_domain_level}); desired method: {plan.desired_method}",
        f"Observed state: {', '.join(plan.observation_sources) or 'unknown'} (digest {plan.observation_digest})",
        (f"Blast radius: {len(changes)} node(s) change, {len(disruptive)} taken out of service "
         f"(OS disk rewritten; {osds} OSD(s) fenced with noout, OSD disks never written)" if disruptive else
         f"Blast radius: {len(changes)} node(s) change, none taken out of service" if changes else
         "Blast radius: none (no changes)"),
        f"Safety: at most {plan.max_in_flight} node(s) and {policy.max_failure_domains_down} "
        f"{region.failure_domain_level} disrupted at once; provisioning concurrency "
        f"{policy.provisioning_concurrency}; halt after {policy.max_failures} failure(s)",
    ]
    if gpus or policy.gpu_capacity_floor:
        floors = ", ".join(
            f"{model} {sum(1 for n in region.nodes if n.gpu_model == model)} nodes (floor {floor})"
            for model, floor in policy.gpu_capacity_floor
        )
        lines.append(f"GPU capacity: {floors or 'no floors'}; GPU nodes disrupted by this plan: "
                     f"{', '.join(f'{m} x{c}' for m, c in sorted(gpus.items())) or 'none'}")
    if not region.clusters.has_workload:
        lines.append("Kubernetes: no workload cluster in region.yml: cordon/drain/uncordon steps are skipped")
    return lines


# More nodes than this left alone for being outside --limit are shown on one line.
_COLLAPSE_OVER = 4


def render_plan_text(plan: Plan, region: Region, *, verbose: bool = False) -> str:
    out = [*blast_radius(plan, region), ""]
    if plan.refusals:
        out.append("REFUSED: this plan cannot be applied:")
        out += [f"  ! {r}" for r in plan.refusals]
        out.append("")
    current = None
    for action in plan.changes:
        if action.failure_domain != current:
            current = action.failure_domain
            out.append(f"{region.failure_domain_level} {current}:")
        observed = action.observed_method or "unknown"
        out.append(f"  {_SYMBOL[action.kind]:>3} {action.position:>3}. {action.node:<16} {action.kind.value:<19} "
                   f"[{action.node_class}{', ' + action.gpu_model if action.gpu_model else ''}; "
                   f"observed {observed}, desired {action.desired_method}]")
        out.append(f"          reason: {action.reason}")
        if verbose:
            out.append(f"          steps:  {' -> '.join(action.steps)}")
    skipped = [a for a in plan.actions if a.kind is ActionKind.NONE]
    if skipped:
        out.append("")
        out.append(f"Left alone ({len(skipped)}):")
        by_reason: dict[str, list[Action]] = {}
        for a in skipped:
            by_reason.setdefault(a.skip_reason or "", []).append(a)
        for a in skipped:
            same = by_reason[a.skip_reason or ""]
            if len(same) > _COLLAPSE_OVER and (a.skip_reason or "").startswith("outside --limit"):
                # A one-node re-image in a big region: one line, not one per node, before the prompt.
                if a is same[0]:
                    names = ", ".join(x.node for x in same[:_COLLAPSE_OVER]) + ", ..."
                    out.append(f"      {len(same)} nodes ({names}) {a.skip_reason}")
                continue
            out.append(f"      {a.node:<16} [observed {a.observed_method or 'unknown'}, desired {a.desired_method}] "
                       f"{a.skip_reason}")
    counts = Counter(a.kind for a in plan.changes)
    out.append("")
    summary = ", ".join(f"{counts[k]} {k.value}" for k in ActionKind if k is not ActionKind.NONE and counts[k])
    out.append(f"Plan: {summary or 'no changes'}; {len(skipped)} left alone.")
    return "\n".join(out) + "\n"
