"""`rollout migrate`: move a region's nodes between Ansible and Cluster API, node by node.

Thin: parse, build the request (`rollout.app.migrating`), and run it through the same session as
`rollout apply` (lock + Lease, observe, plan with the method overridden, confirm, engine, journal).
"""

from __future__ import annotations

from typing import Annotated

import typer

from rollout.app.applying import ApplyRequest, Session
from rollout.app.migrating import MigrateRequest, apply_request
from rollout.cli.commands.engine import _run
from rollout.cli.console import console
from rollout.cli.options import LimitOpt, OutputOpt, RegionOpt, check_output
from rollout.errors import ConfigError
from rollout.exitcodes import ExitCode
from rollout.model.region import Method
from rollout.render.plan_json import plan_to_json
from rollout.render.plan_text import render_plan_text


def migrate(
    ctx: typer.Context,
    region: RegionOpt,
    to: Annotated[str, typer.Option("--to", metavar="capi|ansible", help="Target method.")],
    limit: LimitOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (automation).")] = False,
    output: OutputOpt = "text",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Observe live (SSH markers, Ceph, CAPI objects) and "
                                          "print the plan; change nothing.")] = False,
) -> int:
    """Migrate nodes to another method, one Ceph failure domain at a time, with the same safety as apply.

    To Cluster API, per node: preflight (Cluster initialized, Metal3Cluster, `<cluster>-kubeconfig` and
    `<cluster>-ca` Secrets), drain, fence Ceph, delete the Node object, create the BareMetalHost (not
    externally provisioned, cleaning disabled, exact root hints), grow the class's MachineDeployment,
    wait for BMH -> Metal3Machine -> Machine -> Node Ready, re-activate the OSDs, verify, unfence.
    To Ansible, per node: drain, fence, detach the BareMetalHost and WAIT for `operationalStatus:
    detached`, remove its Machine, delete the detached BMH (the host is untouched), re-install through
    the BMC, site.yml, verify, unfence.

    Stop any time with Ctrl-C; `rollout migrate` (or `rollout apply`) again resumes the nodes in flight.
    A half-migrated region is a normal state: to reverse, migrate the other way (finished nodes move
    back; a node in flight is finished first). Equivalent to changing `method` in region.yml and
    running `rollout apply`. To keep a region half-migrated, record the migrated nodes' method in the
    inventory (`rollout_method: capi` in their host_vars or their rack's group_vars): plain `rollout apply`
    plans every node toward its inventory method and would otherwise move them back.
    Exit codes as `rollout apply`: 0 ok, 3 refused for safety, 4 partial, 64 usage.

    --limit migrates only the nodes it matches; the others keep their observed method.

    Examples:

    \b
      rollout migrate --region example --to capi --dry-run   # live: each node's observed/desired method
      rollout migrate --region example --to capi --limit rack_r1
      rollout migrate --region example --to capi --yes
      rollout migrate --region example --to ansible --limit ex-r2-n03
    """
    check_output(output)
    try:
        method = Method(to)
    except ValueError:
        raise ConfigError(f"--to must be capi or ansible, not {to!r}") from None
    request = MigrateRequest(region=region, to=method, limit=limit)
    if dry_run:
        return _dry_run(ctx, apply_request(request), output)
    return _run(ctx, apply_request(request), yes=yes, confirm_word=None, output=output)


def _dry_run(ctx: typer.Context, request: ApplyRequest, output: str) -> int:
    con = console()
    with Session(ctx.obj, request, say=con.say) as session:
        plan, _, _ = session.plan()
    if output == "json":
        con.data(plan_to_json(plan) + "\n")
    else:
        con.say(render_plan_text(plan, session.source.region, verbose=True))
    limit = f" --limit {request.limit}" if request.limit else ""
    con.next_command(f"rollout migrate --region {request.region} --to {request.method_override}{limit}")
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    app.command("migrate", short_help="Move nodes between Ansible and Cluster API, safely.")(migrate)
