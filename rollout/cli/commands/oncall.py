"""`rollout explain NODE` and `rollout history`: the on-call questions, answered from journal + plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rollout.app.explaining import explain_node, history
from rollout.cli.commands.engine import close_nodes, node_region, with_node_suggestion
from rollout.cli.completion import complete_node
from rollout.cli.console import console
from rollout.cli.options import NodeArg, OptionalRegionOpt, OutputOpt, RegionOpt, check_output
from rollout.errors import ConfigError
from rollout.exitcodes import ExitCode
from rollout.journal import journal_path


def explain(
    ctx: typer.Context,
    node: NodeArg,
    region: OptionalRegionOpt = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not observe (no SSH/Ceph): journal and "
                                          "inventory only.")] = False,
    output: OutputOpt = "text",
) -> int:
    """Why is this node (not) in the plan? Observed vs desired method, last journal entries, quarantine.

    Without --offline it observes the region read-only first (SSH markers, Ceph), as `rollout apply`
    would; --offline answers from the inventory and the journal alone.

    Examples:

    \b
      rollout explain lab-r1-n2
      rollout explain ex-r2-n05 --region example --offline
      rollout explain lab-r1-n2 -o json | jq .journal
    """
    check_output(output)
    region = region or node_region(ctx, node)
    try:
        doc = explain_node(ctx.obj, region, node, offline=offline)
    except ConfigError as exc:
        better = with_node_suggestion(ctx, node, exc)
        if better is exc:
            raise
        raise better from exc
    con = console()
    if output == "json":
        con.data(json.dumps(doc, indent=2) + "\n")
    else:
        why = doc["not_observed_because"]
        observed = (f"not observed ({why})" if why and not doc["observed_method"] else
                    f"{doc['observed_method'] or 'unknown'} (from {', '.join(doc['observed_from'])})")
        con.say(f"{node} (region {region})")
        con.say(f"  desired method:  {doc['desired_method']}")
        con.say(f"  observed method: {observed}")
        con.say(f"  plan:            {doc['action']}: {doc['reason']}")
        if doc["quarantined"]:
            con.say(f"  QUARANTINED:     {doc['quarantined']}", style="red")
        if doc["unfinished"]:
            u = doc["unfinished"]
            con.say(f"  unfinished:      {u['action']} from run {u['run_id']}; done: {', '.join(u['done']) or '-'}"
                    + (f"; interrupted during {u['open_step']}" if u["open_step"] else ""))
        if doc["journal"]:
            con.say("  last journal entries:")
            for t in doc["journal"]:
                con.say(f"    {t['at'][:19]} {t['step']:<18} {t['kind']:<6} {t['status']:<11} {t['summary'][:80]}")
        else:
            con.say("  journal: no entries (rollout never acted on this node here)")
        if why == "--offline" and not doc["observed_method"] and not doc["unfinished"] and not doc["quarantined"]:
            con.say("  (--offline: nothing was observed, so the node's state counts as unknown; without "
                    "--offline, explain first observes it read-only over SSH)")
    con.next_command(doc["next"])
    return ExitCode.OK


def history_cmd(
    ctx: typer.Context,
    region: RegionOpt,
    node: Annotated[str | None, typer.Option("--node", "-n", metavar="NODE", help="Only runs that touched this "
                                             "node, with its steps.", autocompletion=complete_node)] = None,
    output: OutputOpt = "text",
) -> int:
    """Past runs: who ran them, when, how long, with what outcome (and a node's steps with --node).

    Reads the journal in the state dir (--state-dir, ROLLOUT_STATE_DIR, default ./.rollout).

    Examples:

    \b
      rollout history --region lab
      rollout history --region lab --node lab-r1-n2
    """
    check_output(output)
    doc = history(ctx.obj, region, node)
    con = console()
    if output == "json":
        con.data(json.dumps(doc, indent=2) + "\n")
    else:
        if not doc["runs"]:
            journal = journal_path(ctx.obj.state_dir, region)
            where = (f"in {Path(journal).resolve()}" if journal.exists() else
                     f"(no journal in {Path(ctx.obj.state_dir).resolve()}; runs made elsewhere: point "
                     "--state-dir or ROLLOUT_STATE_DIR at their state dir)")
            con.say(f"No runs recorded for region {region}" + (f" touching {node}" if node else "") + f" {where}")
            close = close_nodes(ctx, node) if node else None
            if close is not None:
                con.hint(f"no inventory lists a node `{node}`"
                         + (f": did you mean {' or '.join(close)}?" if close else ""))
        for r in doc["runs"]:
            con.say(f"{r['started'][:19]}  {r['run_id']}  {r['user']}@{r['host']}  {r['duration']:>8}  "
                    f"{r['outcome']}  {r['reason'][:60]}")
            con.say(f"    {r['command']}  nodes: {', '.join(r['nodes']) or '-'}")
        for t in doc["steps"]:
            con.say(f"  {t['at'][:19]} {t['run_id'][-8:]} {t['step']:<18} {t['kind']:<6} {t['status']:<11} "
                    f"{t['summary'][:70]}")
    con.next_command(f"rollout status --region {region}")
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    app.command("explain", short_help="Why is this node (not) in the plan?")(explain)
    app.command("history", short_help="Past runs: who, when, how long, outcome.")(history_cmd)
