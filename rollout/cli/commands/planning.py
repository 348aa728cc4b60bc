"""`rollout validate` and `rollout plan`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from rollout.app.planning import load, plan_region
from rollout.cli.console import console
from rollout.cli.options import LimitOpt, OutputOpt, RegionOpt, check_output
from rollout.exitcodes import ExitCode
from rollout.model.region import Method
from rollout.render.plan_json import plan_to_json
from rollout.render.plan_text import render_plan_text


def validate(ctx: typer.Context, region: RegionOpt, output: OutputOpt = "text") -> int:
    """Validate a region's inventory and region.yml statically (no network).

    Reports every problem at once as file:line, host, field, what is wrong and how to fix it;
    exit code 64 when anything is wrong.

    Examples:

    \b
      rollout validate --region example
      rollout validate --region example -o json | jq .nodes
    """
    check_output(output)
    source = load(ctx.obj, region, cached=False)
    r = source.region
    con = console()
    if output == "json":
        con.data(json.dumps({"schema": "rollout.validate/v1", "region": r.name, "valid": True,
                             "nodes": len(r.nodes), "failure_domains": list(r.failure_domains),
                             "node_classes": [c.name for c in r.node_classes]}, indent=2) + "\n")
    else:
        classes = ", ".join(f"{c.name} ({sum(1 for n in r.nodes if n.node_class == c.name)})" for c in r.node_classes)
        con.say(f"Region {r.name} is valid: {len(r.nodes)} nodes in {len(r.failure_domains)} "
                f"{r.failure_domain_level}s; classes: {classes}; method {r.method.value}.", style="green")
    con.next_command(f"rollout plan --region {region}")
    return ExitCode.OK


def plan(
    ctx: typer.Context,
    region: RegionOpt,
    output: OutputOpt = "text",
    limit: LimitOpt = None,
    observed: Annotated[Path | None, typer.Option("--observed", metavar="FILE", help="Recorded observation JSON "
                                                  "(schema rollout.observation/v1) instead of unknown.")] = None,
    reimage: Annotated[list[str] | None, typer.Option("--reimage", metavar="NODE", help="Plan a re-image of this "
                                                      "node (repeatable).")] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="ansible|capi", help="Plan with this method instead "
                                           "of region.yml's: a migration preview.")] = None,
    detailed_exitcode: Annotated[bool, typer.Option("--detailed-exitcode", help="Exit 2 when the plan has "
                                                    "changes, 0 when it has none.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show each action's steps.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Do not observe the nodes (no SSH, Ceph or "
                                          "Kubernetes): their state counts as unknown.")] = False,
) -> int:
    """Show what `rollout apply` would do: per node an action with its reason, in order.

    Actions: provision, configure, reimage, migrate-to-capi, migrate-to-ansible, none (with the
    reason it is left alone). Nodes are taken failure domain by failure domain under the policy.

    `plan` first observes the region read-only, as `rollout apply` does (SSH markers, Ceph, and the
    management cluster when there is one); it takes no lock and changes nothing. --offline skips that
    (every node's state counts as unknown), --observed FILE uses a recorded observation instead. A region
    whose region.yml says `offline: true` (the shipped `example`) is never contacted.

    Examples:

    \b
      rollout plan --region example
      rollout plan --region example -o json > plan.json
      rollout plan --region example --limit rack_r1 --reimage ex-r1-n02
      rollout plan --region example --to capi --observed observed.json --detailed-exitcode
    """
    check_output(output)
    method = None
    if to is not None:
        if to not in ("ansible", "capi"):
            raise typer.BadParameter(f"--to must be ansible or capi, not {to!r}")
        method = Method(to)
    con = console()
    live = not offline and observed is None
    started = time.monotonic()
    result = plan_region(ctx.obj, region, observed=observed, limit=limit,
                         reimage=frozenset(reimage or ()), method=method, live=live)
    sources = result.observation.sources
    if observed is not None:
        con.say(f"Observation: recorded in {observed} ({', '.join(sources) or 'no sources'}).")
    elif live and not result.source.region.offline:
        con.say(f"Observation: live ({', '.join(sources)}), {time.monotonic() - started:.1f} s.")
    else:
        why = "region.yml says `offline: true`" if result.source.region.offline else "--offline"
        con.say(f"Observation: none ({why}): every node's state counts as unknown.")
    if output == "json":
        con.data(plan_to_json(result.plan))
    else:
        con.say(render_plan_text(result.plan, result.source.region, verbose=verbose))
    if result.plan.refusals:
        con.next_command(f"fix region.yml for the refusals above, then `rollout plan --region {region}` again")
        return ExitCode.REFUSED
    if result.source.region.offline:
        con.next_command(f"rollout render --region {region} --out DIR   (a region on paper: plan and render only)")
    elif result.plan.has_changes:
        save = " -o json > plan.json" if output == "text" else ""
        con.next_command(f"rollout apply --region {region}" + (f" --limit '{limit}'" if limit else "")
                         + (f"   (or save it: rollout plan --region {region}{save})" if save else ""))
    else:
        con.next_command(f"nothing to do; `rollout status --region {region}` shows the nodes")
    if detailed_exitcode and result.plan.has_changes:
        return ExitCode.CHANGES_PRESENT
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    app.command("validate", short_help="Check a region's inventory statically (no network).")(validate)
    app.command("plan", short_help="Show what apply would do, per node with its reason.")(plan)
