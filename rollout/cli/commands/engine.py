"""`rollout apply`, `rollout reimage`, `rollout status`, `rollout unlock`.

Invariants:
- Nothing is changed without a typed confirmation (or --yes); Ctrl-C or Ctrl-D at the prompt, or a
  wrong word, leaves everything untouched and says so (exit 130, resp. 1).
- `status` and `unlock` never create state: they read the journal only when it exists.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from rollout.app.applying import ApplyRequest, Session
from rollout.app.status import region_status
from rollout.cli.console import Console, console
from rollout.cli.options import LimitOpt, NodeArg, OptionalRegionOpt, OutputOpt, RegionOpt, check_output
from rollout.errors import ConfigError
from rollout.executor.engine import Outcome
from rollout.exitcodes import ExitCode
from rollout.journal import journal_path
from rollout.model.plan import Plan
from rollout.render.plan_text import render_plan_text
from rollout.render.progress import LiveProgress, PlainProgress


def _confirm(con: Console, plan: Plan, *, yes: bool, word: str, what: str) -> bool:
    if yes:
        return True
    if not con.interactive:
        raise ConfigError("refusing to act without a terminal to confirm on",
                          hint="review `rollout plan` and pass --yes for automation")
    try:
        answer = con.ask(f"{what}\nType `{word}` to go on: ")
    except (KeyboardInterrupt, EOFError):
        con.say("")  # the terminal's cursor is still on the prompt line
        con.error("interrupted at the confirmation prompt; nothing was changed")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    if answer.strip() == word:
        return True
    con.say(f"You typed {answer.strip()!r}, not `{word}`: not confirmed; nothing was changed.")
    return False


def _install_sigint(stop: threading.Event, con: Console) -> object:
    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        con.say("Stopping: the steps in flight finish, then rescues run (Ctrl-C again to abort now)",
                style="yellow")

    return signal.signal(signal.SIGINT, handler)


def _report(con: Console, outcome: Outcome, region: str, artifacts: Path, seconds: float | None = None) -> int:
    for node, why in outcome.quarantined:
        con.error(f"{node}: {why}")
    took = f" in {int(seconds // 60)}m{int(seconds % 60):02d}s" if seconds is not None else ""
    con.say(f"Run {outcome.run_id}{took}: {len(outcome.done)} done, {len(outcome.quarantined)} quarantined, "
            f"{len(outcome.not_started)} not started; artifacts: {artifacts}")
    if outcome.interrupted:
        con.next_command(f"rollout apply --region {region}   (resumes where this run stopped)")
        return ExitCode.INTERRUPTED
    if outcome.complete:
        con.say("All nodes done.", style="green")
        con.next_command(f"rollout plan --region {region}   (should now show no changes)")
        return ExitCode.OK
    if outcome.halted:
        con.error(f"halted: {outcome.halted}")
    if outcome.stalled:
        con.error(f"stalled: {outcome.stalled}")
    first = outcome.quarantined[0][0] if outcome.quarantined else None
    if first:
        con.next_command(f"rollout explain {first} --region {region}, fix it, then "
                         f"`rollout apply --region {region} --retry {first}`")
    else:
        con.next_command(f"rollout status --region {region}; then `rollout apply --region {region}` to resume")
    return ExitCode.PARTIAL


def _run(ctx: typer.Context, request: ApplyRequest, *, yes: bool, confirm_word: str | None, output: str) -> int:
    check_output(output)
    con = console()
    with Session(ctx.obj, request, say=con.say) as session:
        con.say(f"Run {session.run_id}; artifacts {session.artifacts}")
        plan, _, unfinished = session.plan()
        con.say(render_plan_text(plan, session.source.region, verbose=True))
        if not plan.has_changes:
            con.say("Nothing to do.", style="green")
            if output == "json":
                con.data(json.dumps({"schema": "rollout.run/v1", "run_id": None, "done": [], "quarantined": [],
                                     "not_started": [], "halted": None, "interrupted": False, "stalled": None,
                                     "nothing_to_do": True}, indent=2) + "\n")
            con.next_command(f"rollout status --region {request.region}")
            return ExitCode.OK
        disruptive = [a.node for a in plan.changes if a.kind.rewrites_os_disk]
        word = confirm_word or (request.region if disruptive else "yes")
        what = (f"This re-images {len(disruptive)} node(s) ({', '.join(disruptive)}): OS disks are rewritten, "
                "OSD disks are kept." if disruptive else f"This changes {len(plan.changes)} node(s).")
        if not _confirm(con, plan, yes=yes, word=word, what=what):
            con.next_command(f"run the same command again and type `{word}` exactly")
            return ExitCode.ERROR
        stop = threading.Event()
        previous = _install_sigint(stop, con)
        names = [a.node for a in plan.changes]
        progress = (LiveProgress(con.err, names) if con.err.is_terminal and output == "text"
                    else PlainProgress(con.err))
        started = time.monotonic()
        try:
            try:
                outcome = session.execute(plan, unfinished, progress, stop)
            finally:
                progress.close()
                signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            # Second Ctrl-C: the run did not wind down; the journal knows where each node is.
            con.error("aborted by a second Ctrl-C: nodes in flight may be half-way through a phase and their "
                      "rescues (uncordon, unset noout) may not have run")
            con.next_command(f"rollout status --region {request.region}, then `rollout apply --region "
                             f"{request.region}` (resumes from the journal)")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        if output == "json":
            con.data(json.dumps({"schema": "rollout.run/v1", "run_id": outcome.run_id, "done": list(outcome.done),
                                 "quarantined": [{"node": n, "reason": r} for n, r in outcome.quarantined],
                                 "not_started": list(outcome.not_started), "halted": outcome.halted,
                                 "interrupted": outcome.interrupted, "stalled": outcome.stalled,
                                 "nothing_to_do": False}, indent=2) + "\n")
        return _report(con, outcome, request.region, session.artifacts, time.monotonic() - started)


def apply(
    ctx: typer.Context,
    region: RegionOpt,
    plan_file: Annotated[Path | None, typer.Argument(help="A plan saved with `rollout plan -o json`; refused "
                                                     "when the observed state changed since.")] = None,
    limit: LimitOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (automation).")] = False,
    retry: Annotated[list[str] | None, typer.Option("--retry", metavar="NODE", help="Take a quarantined node "
                                                    "again (repeatable).")] = None,
    force_configure: Annotated[bool, typer.Option("--force-configure", help="Re-run site.yml + verify.yml on "
                                                  "nodes that are up to date (drift repair).")] = False,
    output: OutputOpt = "text",
) -> int:
    """Observe, plan and carry out the plan, failure domain by failure domain; resumes interrupted runs.

    Prints the plan and asks for confirmation (the region name when anything is re-imaged); --yes for
    automation; refuses without a terminal and without --yes. A second apply on the same region is
    refused while the first holds the lock (exit 3). Ctrl-C finishes the steps in flight, rescues,
    and exits 130; `rollout apply` again resumes.

    With -o json the run summary (schema rollout.run/v1) goes to stdout.

    Examples:

    \b
      rollout apply --region lab
      rollout apply --region lab --yes --limit rack_r1
      rollout plan --region lab -o json > plan.json && rollout apply --region lab plan.json
      rollout apply --region lab --retry lab-r1-n2
    """
    request = ApplyRequest(region=region, limit=limit, plan_file=plan_file, retry=frozenset(retry or ()),
                           force_configure=force_configure)
    return _run(ctx, request, yes=yes, confirm_word=None, output=output)


def reimage(
    ctx: typer.Context,
    node: NodeArg,
    region: OptionalRegionOpt = None,
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT",
                                        help="Why (journaled; shows in `rollout history`).")] = "",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for the typed node name.")] = False,
    output: OutputOpt = "text",
) -> int:
    """Re-image one node safely: same phases and Ceph gates as apply (ok-to-stop, noout, wait for clean).

    The OS disk is rewritten (Redfish one-time PXE/virtual-media boot for Ansible nodes); OSD disks are
    kept and their OSDs re-activated; the OVN system-id and node name are kept. Refused with the
    numbers when Ceph or the policy says no. Asks you to type the node name.

    Examples:

    \b
      rollout reimage lab-r1-n2 --reason "disk errors on sda, ticket OPS-123"
      rollout reimage lab-r1-n2 --region lab --yes
    """
    check_output(output)
    region = region or node_region(ctx, node)
    request = ApplyRequest(region=region, limit=node, reimage=frozenset({node}), retry=frozenset({node}),
                           reason=reason or "no reason given")
    return _run(ctx, request, yes=yes, confirm_word=node, output=output)


def status(ctx: typer.Context, region: RegionOpt, output: OutputOpt = "text") -> int:
    """Per node: method, last phase and result, quarantine reason; and who holds the region lock.

    Reads the journal only (no network). The journal lives in the state dir (--state-dir,
    ROLLOUT_STATE_DIR, default ./.rollout where you run rollout).

    Examples:

    \b
      rollout status --region lab
      rollout status --region lab -o json | jq '.nodes[] | select(.quarantined)'
    """
    check_output(output)
    con = console()
    doc = region_status(ctx.obj, region)
    if not journal_path(ctx.obj.state_dir, region).exists():
        con.say(f"No journal for region {region} in {Path(ctx.obj.state_dir).resolve()}: rollout has not acted "
                "on it with this state dir, so every node shows '-' (runs made elsewhere: point --state-dir or "
                "ROLLOUT_STATE_DIR at their state dir).", style="yellow")
    if output == "json":
        con.data(json.dumps(doc, indent=2) + "\n")
    else:
        lock = doc["lock"]
        con.say(f"Region {region}: lock {'held by ' + lock['holder'] if lock else 'free'}"
                + (" (STALE: holder process is gone)" if lock and lock.get("stale") else ""))
        con.say(f"{'node':<16} {'class':<8} {'rack':<5} {'last step':<18} {'result':<12} note")
        for n in doc["nodes"]:
            note = f"QUARANTINED: {n['quarantined']}" if n["quarantined"] else n["summary"]
            con.say(f"{n['node']:<16} {n['node_class']:<8} {n['rack']:<5} {n['step'] or '-':<18} "
                    f"{n['status'] or '-':<12} {note[:90]}")
        if doc["last_run"]:
            r = doc["last_run"]
            con.say(f"Last run {r['run_id']} by {r['user']}: {r['outcome'] or 'running/interrupted'} {r['reason']}")
    if doc["lock"] and doc["lock"].get("stale"):
        con.next_command(f"rollout apply --region {region}   (takes over the stale lock and resumes)")
    elif any(n["quarantined"] for n in doc["nodes"]):
        first = next(n["node"] for n in doc["nodes"] if n["quarantined"])
        con.next_command(f"rollout explain {first} --region {region}")
    else:
        con.next_command(f"rollout plan --region {region}")
    return ExitCode.OK


def unlock(
    ctx: typer.Context,
    region: RegionOpt,
    force: Annotated[str, typer.Option("--force", metavar="LOCK_ID",
                                       help="The exact lock id shown by `rollout status`.")],
) -> int:
    """Remove a region lock whose holder is gone (requires the exact lock id).

    Only when `rollout status` says the holder is gone (STALE), or you know its machine is dead:
    `rollout apply` takes over a stale lock of this machine by itself.

    Examples:

    \b
      rollout status --region lab          # shows: lock held by run ... (lock id 3f2a9c1b0d11)
      rollout unlock --region lab --force 3f2a9c1b0d11
    """
    from rollout.journal import Journal
    from rollout.lock import RegionLock

    state = Path(ctx.obj.state_dir)
    if not journal_path(state, region).exists():  # never create a journal just to say "not locked"
        known = sorted(p.parent.name for p in state.glob("*/journal.sqlite")) if state.is_dir() else []
        raise ConfigError(f"no journal for region `{region}` in {state.resolve()}: nothing is locked there",
                          hint=(f"regions with a journal there: {', '.join(known)}; " if known else "")
                          + "point --state-dir or ROLLOUT_STATE_DIR at the state dir of the run holding the lock")
    with Journal.open(region, ctx.obj.state_dir) as journal:
        removed = RegionLock(journal).force_unlock(force, reason="rollout unlock --force")
    con = console()
    con.say(f"Removed lock {removed.lock_id}: {removed.describe()}")
    con.next_command(f"rollout apply --region {region}   (resumes what that run left unfinished)")
    return ExitCode.OK


def node_region(ctx: typer.Context, node: str) -> str:
    """The region holding `node`; an unknown node name gets the closest known names as a hint."""
    from rollout.app.status import find_region_of

    try:
        return find_region_of(ctx.obj, node)
    except ConfigError as exc:
        better = with_node_suggestion(ctx, node, exc)
        if better is exc:
            raise
        raise better from exc


def close_nodes(ctx: typer.Context, node: str) -> list[str] | None:
    """None when some inventory lists `node` (read fast, from hosts.yml only); else the closest names."""
    import difflib

    from rollout.cli.completion import nodes

    known = nodes(Path(ctx.obj.inventory_root) if ctx.obj is not None else None)
    return None if node in known else difflib.get_close_matches(node, known, n=3, cutoff=0.6)


def with_node_suggestion(ctx: typer.Context, node: str, exc: ConfigError) -> ConfigError:
    """`exc` about an unknown `node`, with "did you mean ...?" as its hint when a known name is close."""
    close = close_nodes(ctx, node)
    if not close or f"`{node}`" not in exc.message:
        return exc
    return ConfigError(exc.message, hint=f"did you mean {' or '.join(close)}?")


def register(app: typer.Typer) -> None:
    app.command("apply", short_help="Observe, plan and carry out the plan (asks first).")(apply)
    app.command("reimage", short_help="Re-image one node safely (asks for its name).")(reimage)
    app.command("status", short_help="Per node: last step and result; the region lock.")(status)
    app.command("unlock", short_help="Remove a region lock whose holder is gone.")(unlock)
