"""`rollout explain NODE` and `rollout history`: the on-call questions, answered from journal + plan."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from rollout.app.explaining import explain_node, history
from rollout.cli.completion import complete_node, complete_region
from rollout.cli.console import console
from rollout.exitcodes import ExitCode


def explain(
    ctx: typer.Context,
    node: Annotated[str, typer.Argument(help="Node name.", autocompletion=complete_node)],
    region: Annotated[str | None, typer.Option("--region", "-r", help="Region (found from the node when omitted).",
                                               autocompletion=complete_region)] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not observe (no SSH/Ceph): journal and "
                                          "inventory only.")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> int:
    """Why is this node (not) in the plan? Observed vs desired method, last journal entries, quarantine.

    Examples:

      rollout explain lab-r1-n2

      rollout explain ex-r2-n05 --region example --offline

      rollout explain lab-r1-n2 -o json | jq .journal
    """
    from rollout.app.status import find_region_of

    region = region or find_region_of(ctx.obj, node)
    doc = explain_node(ctx.obj, region, node, offline=offline)
    con = console()
    if output == "json":
        con.data(json.dumps(doc, indent=2) + "\n")
    else:
        con.say(f"{node} (region {region})")
        con.say(f"  desired method:  {doc['desired_method']}")
        con.say(f"  observed method: {doc['observed_method'] or 'unknown'} (from {', '.join(doc['observed_from'])})")
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
    con.next_command(doc["next"])
    return ExitCode.OK


def history_cmd(
    ctx: typer.Context,
    region: Annotated[str, typer.Option("--region", "-r", help="Region.", autocompletion=complete_region)],
    node: Annotated[str | None, typer.Option("--node", "-n", help="Only runs that touched this node, with its "
                                             "steps.", autocompletion=complete_node)] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="text or json.")] = "text",
) -> int:
    """Past runs: who ran them, when, how long, with what outcome (and a node's steps with --node).

    Examples:

      rollout history --region lab

      rollout history --region lab --node lab-r1-n2
    """
    doc = history(ctx.obj, region, node)
    con = console()
    if output == "json":
        con.data(json.dumps(doc, indent=2) + "\n")
    else:
        if not doc["runs"]:
            con.say(f"No runs recorded for region {region}" + (f" touching {node}" if node else ""))
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
    app.command("explain")(explain)
    app.command("history")(history_cmd)
