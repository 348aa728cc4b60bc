"""The `rollout` command tree and its error handling: parses arguments, calls `rollout.app`, renders,
maps errors to exit codes. `rollout.cli.main` is the thin entry point that imports this module.

Invariants:
- Every error leaves through `main()`, which prints what/where/hint (a traceback only with --debug)
  and exits with the code from `rollout.exitcodes` (documented in --help).
- Command modules register themselves here; they never call `sys.exit` themselves.
- Ctrl-C anywhere in a command ends with `Error: interrupted` on its own line and exit 130 (typer
  alone would exit 130 silently, leaving the shell prompt after the `^C`).
- Global options given on the command line (--inventory-root, --state-dir) are not repeated in the
  `Next:` commands (tests and runbooks match those verbatim); the console says once that they are
  needed, with the environment variable that makes them stick.
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import click
import typer

from rollout.app.context import Context
from rollout.cli.completion import regions
from rollout.cli.console import console
from rollout.errors import RolloutError
from rollout.exitcodes import HELP_TEXT, ExitCode

try:  # typer >= 0.24 vendors its own copy of click; its exceptions are distinct classes
    from typer._click import exceptions as _tclick
except ImportError:  # pragma: no cover - older typer uses click itself
    _tclick = click.exceptions  # type: ignore[misc]

_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_CLICK_ERROR = (click.ClickException, _tclick.ClickException)
_MISSING = (click.exceptions.MissingParameter, _tclick.MissingParameter)

# Global options that later commands need again, with the environment variable that sets them for good.
_GLOBAL_FLAGS = {"--inventory-root": "ROLLOUT_INVENTORY_ROOT", "--state-dir": "ROLLOUT_STATE_DIR"}

app = typer.Typer(
    name="rollout",
    help=(
        "Roll out, re-image and migrate hyperconverged bare-metal nodes (Ceph OSD + OVN chassis + kubelet "
        "+ NVIDIA vGPU) with Ansible or Cluster API + Metal3, one region at a time.\n\n"
        "First steps, offline on the shipped `example` region (its addresses are imaginary):\n\n"
        "\b\n"
        "  rollout validate --region example\n"
        "  rollout plan --region example\n"
        "  rollout explain ex-r1-n01 --region example --offline\n\n"
        "Daily verbs: `rollout plan --region R`, then `rollout apply --region R`. Every command ends with "
        "the next sensible one (`Next: ...`); `rollout COMMAND -h` has examples. On-call: docs/oncall.md.\n\n"
        "Shell completion (commands, regions, node names):\n\n"
        "\b\n"
        "  rollout --install-completion              # once (bash, zsh, fish): edits your shell's rc file\n"
        "  eval \"$(rollout --show-completion bash)\"   # or for the current shell only\n\n" + HELP_TEXT
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("rollout-baremetal")
        except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
            number = "unknown (not installed)"
        console().data(f"rollout {number}\n")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _global(
    ctx: typer.Context,
    inventory_root: Annotated[
        Path, typer.Option("--inventory-root", envvar="ROLLOUT_INVENTORY_ROOT", metavar="DIR",
                           help="Directory holding one folder per region.")
    ] = Path("inventories"),
    state_dir: Annotated[
        Path, typer.Option("--state-dir", envvar="ROLLOUT_STATE_DIR", metavar="DIR",
                           help="Where journals, locks and artifacts live (relative to the current "
                                "directory unless absolute).")
    ] = Path(".rollout"),
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Show the version and exit.")] = False,
) -> None:
    ctx.obj = Context(inventory_root=inventory_root, state_dir=state_dir, debug=debug)


def _interruptible(fn: Callable[..., object]) -> Callable[..., object]:
    """Ctrl-C inside a command: newline (the cursor sits after `^C`), then `Error: interrupted`, exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            console().say("")
            raise typer.Abort() from None

    return wrapper


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
    commands = list(app.registered_commands)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            commands += group.typer_instance.registered_commands
    for info in commands:
        if info.callback is not None:
            info.callback = _interruptible(info.callback)


_register_commands()


def _global_flags(args: list[str]) -> dict[str, str]:
    """--inventory-root/--state-dir as given before the command name (`--flag VALUE` or `--flag=VALUE`)."""
    found: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        flag, eq, value = args[i].partition("=")
        if flag in _GLOBAL_FLAGS:
            if not eq:
                i += 1
                value = args[i] if i < len(args) else ""
            found[flag] = value
        i += 1
    return found


def _missing_hint(exc: Exception, flags: dict[str, str]) -> str | None:
    """What to pass for a missing option or argument: the known regions for --region, else its help."""
    param = getattr(exc, "param", None)
    if param is None:
        return None
    if param.name == "region":
        root = flags.get("--inventory-root") or os.environ.get("ROLLOUT_INVENTORY_ROOT") or "inventories"
        known = regions(Path(root))
        return (f"known regions under {root}: {', '.join(known)}" if known
                else f"no region under {root}; set --inventory-root or ROLLOUT_INVENTORY_ROOT")
    if param.name == "node":
        return "a node name from the inventory; `rollout status --region R` lists a region's nodes"
    name = (param.opts[0] + (f" {param.metavar}" if getattr(param, "metavar", None) else "")
            if getattr(param, "param_type_name", "") == "option" else param.name)
    return f"{name}: {param.help}" if getattr(param, "help", None) else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("ROLLOUT_DEBUG") == "1"
    con = console()
    flags = _global_flags(args)
    con.set_carry(" ".join(f"{k} {shlex.quote(v)}" for k, v in flags.items()) or None,
                  " ".join(f"{_GLOBAL_FLAGS[k]}={shlex.quote(v)}" for k, v in flags.items()) or None)
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
        hint = _missing_hint(exc, flags) if isinstance(exc, _MISSING) else None
        if hint:
            con.hint(hint)
        code = ExitCode.USAGE
    except KeyboardInterrupt:
        con.error("interrupted")
        code = ExitCode.INTERRUPTED
    except Exception as exc:  # a bug, not the user's fault: one line, the traceback only with --debug
        if debug:
            traceback.print_exc()
        con.error(f"unexpected {type(exc).__name__}: {exc}")
        con.hint("this is a bug in rollout; run it again with --debug (or ROLLOUT_DEBUG=1) for the traceback"
                 if not debug else "this is a bug in rollout; the traceback is above")
        code = ExitCode.ERROR
    if argv is None:
        sys.exit(code)
    return code

