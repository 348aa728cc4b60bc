"""`rollout`: the entry point. Parses arguments, calls `rollout.app`, renders, maps errors to exit codes.

Invariants:
- Every error leaves through `main()`, which prints what/where/hint (a traceback only with --debug)
  and exits with the code from `rollout.exitcodes` (documented in --help).
- Command modules register themselves here; they never call `sys.exit` themselves.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer

from rollout.app.context import Context
from rollout.cli.console import console
from rollout.errors import RolloutError
from rollout.exitcodes import HELP_TEXT, ExitCode

try:  # typer >= 0.24 vendors its own copy of click; its exceptions are distinct classes
    from typer._click import exceptions as _tclick
except ImportError:  # pragma: no cover - older typer uses click itself
    _tclick = click.exceptions  # type: ignore[assignment]

_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_CLICK_ERROR = (click.ClickException, _tclick.ClickException)

app = typer.Typer(
    name="rollout",
    help=(
        "Roll out, re-image and migrate hyperconverged bare-metal nodes (Ceph OSD + OVN chassis + kubelet "
        "+ NVIDIA vGPU) with Ansible or Cluster API + Metal3, one region at a time.\n\n"
        "Daily verbs: `rollout plan --region R`, then `rollout apply --region R`.\n\n" + HELP_TEXT
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global(
    ctx: typer.Context,
    inventory_root: Annotated[
        Path, typer.Option("--inventory-root", envvar="ROLLOUT_INVENTORY_ROOT",
                           help="Directory holding one folder per region.")
    ] = Path("inventories"),
    state_dir: Annotated[
        Path, typer.Option("--state-dir", envvar="ROLLOUT_STATE_DIR",
                           help="Where journals, locks and artifacts live.")
    ] = Path(".rollout"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
) -> None:
    ctx.obj = Context(inventory_root=inventory_root, state_dir=state_dir, debug=debug)


def _register_commands() -> None:
    from rollout.cli.commands import planning

    planning.register(app)
    optional = ("render", "bundle", "lab", "engine", "capi", "oncall")
    for name in optional:
        try:
            module = __import__(f"rollout.cli.commands.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"rollout.cli.commands.{name}":
                raise
            continue
        if hasattr(module, "register"):
            module.register(app)
        elif hasattr(module, "app"):
            app.add_typer(module.app, name=name)


_register_commands()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("ROLLOUT_DEBUG") == "1"
    con = console()
    try:
        result = app(args=args, prog_name="rollout", standalone_mode=False)
        code = int(result) if isinstance(result, int) else ExitCode.OK
    except RolloutError as exc:
        if debug:
            traceback.print_exc()
        con.error(exc.message)
        if exc.hint:
            con.hint(exc.hint)
        code = exc.exit_code
    except _EXIT as exc:
        code = exc.exit_code
    except _ABORT:
        con.error("interrupted")
        code = ExitCode.INTERRUPTED
    except _CLICK_ERROR as exc:
        exc.show()
        code = ExitCode.USAGE
    except KeyboardInterrupt:
        con.error("interrupted")
        code = ExitCode.INTERRUPTED
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
