"""`rollout lab up|status|down`: the local podman lab (thin client of `rollout.lab`).

Parses options, calls `rollout.lab.lifecycle` / `rollout.lab.status`, renders progress to stderr and
data to stdout, and maps lab failures to the project's error taxonomy (exit codes in --help).
Works mounted in the main CLI (`rollout lab ...`, which passes --inventory-root/--state-dir) and
standalone (`python -m rollout.cli.commands.lab up`).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from rollout.cli.console import console
from rollout.cli.options import OutputOpt, check_output
from rollout.errors import ConfigError, PermanentError, PreflightError
from rollout.exitcodes import ExitCode
from rollout.lab import lifecycle, status
from rollout.lab.image import ImageBuildError
from rollout.lab.podman import REPO_ROOT, PodmanError
from rollout.lab.state import LabPaths

app = typer.Typer(
    name="lab",
    help=("The local lab: podman 'servers' (systemd containers on bridge rollout-lab 10.231.0.0/24) with "
          "emulated Redfish BMCs (sushy-tools, TLS + auth), a PXE-like re-installer, a real Ceph mon+mgr and "
          "an OVN central. `rollout apply --region lab` then configures the nodes. See docs/lab.md."),
    short_help="The local podman lab to try rollout on: up, status, down.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _dirs(ctx: typer.Context) -> tuple[LabPaths, Path]:
    obj = getattr(ctx, "obj", None)
    if obj is not None and hasattr(obj, "state_dir"):
        return LabPaths(Path(obj.state_dir).resolve() / "lab"), Path(obj.inventory_root).resolve() / "lab"
    return LabPaths.default(), REPO_ROOT / "inventories" / "lab"


def _map_errors(fn: Any) -> Any:
    try:
        return fn()
    except ValueError as e:
        raise ConfigError(str(e), hint="see `rollout lab up --help` for valid sizes") from e
    except lifecycle.LabError as e:
        raise PreflightError(str(e)) from e
    except ImageBuildError as e:
        raise PreflightError(str(e), hint="check that deb.debian.org is reachable, then retry") from e
    except (PodmanError, subprocess.TimeoutExpired, TimeoutError) as e:
        raise PermanentError(str(e), hint="`rollout lab status` shows what is up; `rollout lab down` "
                             "removes the lab; CONTAINERS_CONF must point at images/containers.conf") from e


@app.command(short_help="Create or complete the lab (idempotent).")
def up(
    ctx: typer.Context,
    racks: Annotated[int | None, typer.Option(
        "--racks", help="Racks (Ceph failure domains), 1-9. Default 3, or the lab's.")] = None,
    nodes_per_rack: Annotated[int | None, typer.Option(
        "--nodes-per-rack", help="Nodes per rack, 1-9. Default 2, or the existing lab's.")] = None,
) -> int:
    """Create or complete the lab (idempotent): images, network, Ceph, OVN, nodes, BMCs, inventory.

    Does NOT configure the nodes: `rollout apply --region lab` does (real Ansible over SSH).

    Examples:

    \b
      rollout lab up
      rollout lab up --racks 1 --nodes-per-rack 2
    """
    con = console()
    paths, inv = _dirs(ctx)
    t0 = time.monotonic()

    def report(component: str, msg: str) -> None:
        con.say(f"  {time.monotonic() - t0:6.1f}s  {component:<12} {msg}")

    con.say(f"Bringing the lab up (state {paths.root}, inventory {inv})", style="bold")

    def run() -> dict[str, Any]:
        # Sizes are validated by LabSpec (one rule, one message; exit 64 through ConfigError).
        spec = lifecycle.resolve_spec(paths, racks, nodes_per_rack)
        with con.err.status("Working...", spinner="dots"):
            return lifecycle.up(spec, paths, inv, report)

    state = _map_errors(run)
    n = state["spec"]["racks"] * state["spec"]["nodes_per_rack"]
    took = time.monotonic() - t0
    con.say(f"Lab up: {n} nodes in {state['spec']['racks']} racks, in {took:.1f}s.", style="green")
    con.next_command("rollout apply --region lab --yes")
    return ExitCode.OK


@app.command("status", short_help="Every lab component with its address and health.")
def status_(ctx: typer.Context, output: OutputOpt = "text") -> int:
    """Show every lab component with its address and health (exit 1 when something is unhealthy).

    Examples:

    \b
      rollout lab status
      rollout lab status -o json | jq '.components[] | select(.healthy | not)'
    """
    check_output(output)
    con = console()
    paths, _ = _dirs(ctx)
    doc = _map_errors(lambda: status.collect(paths))
    if output == "json":
        con.data(json.dumps(doc, indent=2) + "\n")
    elif not doc["exists"]:
        con.say(f"No lab in {paths.root}.")
    else:
        for c in doc["components"]:
            mark = "ok " if c["healthy"] else "BAD"
            extra = ""
            if c["kind"] == "node":
                d = c["detail"]
                extra = f"rack {d['rack']} {d['class']} bmc={d['bmc_power']} reinstalls={d['reinstalls']}"
            elif c["kind"] == "service" and "osds" in c["detail"]:
                extra = f"osds {c['detail']['osds_up']}/{c['detail']['osds']} up"
            elif "chassis" in c["detail"]:
                extra = f"chassis {c['detail']['chassis']}"
            con.say(f"[{mark}] {c['name']:<18} {c['address']:<52} {c['health']:<12} {extra}",
                    style=None if c["healthy"] else "red")
    if not doc["exists"]:
        con.next_command("rollout lab up")
        return ExitCode.ERROR
    con.next_command("rollout apply --region lab --yes" if doc["healthy"] else "rollout lab up")
    return ExitCode.OK if doc["healthy"] else ExitCode.ERROR


@app.command(short_help="Remove everything `lab up` made.")
def down(ctx: typer.Context) -> int:
    """Remove everything `lab up` made: processes (by pid file), containers, volumes, network,
    generated inventory files and the lab state. Touches nothing else.

    Examples:

      rollout lab down
    """
    con = console()
    paths, _ = _dirs(ctx)
    removed = _map_errors(lambda: lifecycle.down(paths, lambda c, m: con.say(f"  {c:<12} {m}")))
    con.say(f"Lab removed ({sum(len(v) for v in removed.values())} objects).", style="green")
    con.next_command("rollout lab up")
    return ExitCode.OK


if __name__ == "__main__":
    import sys

    from rollout.cli.main import main as _main  # reuse the main CLI's error handling and exit codes

    sys.exit(_main(["lab", *sys.argv[1:]]))
