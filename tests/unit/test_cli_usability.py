"""The offline usability pass (docs/usability.md): help, usage errors, prompts, Ctrl-C and hints, through
the real CLI entry point on the shipped `example` region. Nothing here connects anywhere: commands that
would observe the region run against a stub session that plans offline."""

from __future__ import annotations

import inspect
import io
import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console as RichConsole

import rollout.cli.commands.engine as engine
from rollout.app.planning import plan_region
from rollout.cli.console import Console, set_console
from rollout.cli.main import app, main
from rollout.exitcodes import ExitCode
from rollout.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
INV = str(ROOT / "inventories")

Captured = tuple[io.StringIO, io.StringIO]


class PromptConsole(Console):
    """A console on a 'terminal' whose prompt answers with `answer` (or raises it, for Ctrl-C / Ctrl-D)."""

    def __init__(self, answer: str | BaseException, out: io.StringIO, err: io.StringIO) -> None:
        super().__init__(stdout=RichConsole(file=out, width=200), stderr=RichConsole(file=err, width=200))
        self.answer = answer
        self.prompts: list[str] = []

    @property
    def interactive(self) -> bool:
        return True

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


@pytest.fixture()
def captured() -> Iterator[Captured]:
    out, err = io.StringIO(), io.StringIO()
    old = set_console(Console(stdout=RichConsole(file=out, width=200), stderr=RichConsole(file=err, width=200)))
    try:
        yield out, err
    finally:
        set_console(old)


def run(tmp_path: Path, *args: str) -> int:
    return main(["--inventory-root", INV, "--state-dir", str(tmp_path / "state"), *args])


# -- help ---------------------------------------------------------------------------------------------

def _all_commands() -> list[tuple[list[str], Any]]:
    def name(info: Any) -> str:
        return str(info.name or info.callback.__name__)

    found: list[tuple[list[str], Any]] = [([name(c)], c.callback) for c in app.registered_commands]
    for group in app.registered_groups:
        assert group.typer_instance is not None
        found += [([str(group.name), name(c)], c.callback) for c in group.typer_instance.registered_commands]
    return found


@pytest.mark.parametrize(("path", "callback"), _all_commands(), ids=lambda v: " ".join(v) if isinstance(v, list)
                         else "")
def test_every_help_example_is_printed_whole(path: list[str], callback: Any, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Examples must survive copy-paste: click used to re-wrap them (`--dry-` / `run=server` on two lines)."""
    monkeypatch.setenv("COLUMNS", "80")
    doc = inspect.getdoc(inspect.unwrap(callback)) or ""
    assert "Examples:" in doc, f"rollout {' '.join(path)} --help has no examples"
    examples = [line.strip() for line in doc.split("Examples:", 1)[1].splitlines() if line.strip().startswith(
        "rollout ")]
    assert examples
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    for example in examples:
        assert example in out, f"example re-wrapped in `rollout {' '.join(path)} --help`: {example}"


def test_top_level_help_starts_a_new_user_off(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    commands = out.split("Commands:", 1)[1]
    assert "..." not in commands  # one-line summaries are whole, not cut at the terminal width
    assert "rollout validate --region example" in out and "--offline" in out
    assert "rollout --install-completion" in out and 'eval "$(rollout --show-completion bash)"' in out
    assert "Exit codes:" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"rollout {version('rollout-baremetal')}\n"


def test_metavars_say_what_to_type(capsys: pytest.CaptureFixture[str]) -> None:
    main(["apply", "--help"])
    out = capsys.readouterr().out
    assert "--retry NODE" in out and "--output text|json" in out and "list[str]" not in out
    main(["unlock", "--help"])
    assert "--force LOCK_ID" in capsys.readouterr().out


# -- usage errors ---------------------------------------------------------------------------------------

def test_missing_region_lists_the_known_regions(tmp_path: Path, captured: Captured,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "plan") == ExitCode.USAGE
    assert "Hint: known regions under" in captured[1].getvalue() and "example" in captured[1].getvalue()
    assert "Missing option '--region'" in capsys.readouterr().err


def test_missing_option_shows_what_it_wants(tmp_path: Path, captured: Captured) -> None:
    assert run(tmp_path, "unlock", "--region", "example") == ExitCode.USAGE
    assert "Hint: --force LOCK_ID: The exact lock id shown by `rollout status`." in captured[1].getvalue()


@pytest.mark.parametrize("args", [
    ("status", "--region", "example"),
    ("history", "--region", "example"),
    ("explain", "ex-r1-n01", "--region", "example", "--offline"),
    ("apply", "--region", "example"),
    ("reimage", "ex-r1-n01", "--region", "example"),
    ("migrate", "--region", "example", "--to", "capi"),
])
def test_output_must_be_text_or_json_everywhere(tmp_path: Path, captured: Captured,
                                                capsys: pytest.CaptureFixture[str], args: tuple[str, ...]) -> None:
    assert run(tmp_path, *args, "-o", "yaml") == ExitCode.USAGE
    assert "--output must be text or json, not 'yaml'" in capsys.readouterr().err
    assert not (tmp_path / "state" / "example").exists()  # refused before any journal or lock


# -- status / history / unlock without a journal -----------------------------------------------------------

def test_status_without_journal_says_where_it_looked(tmp_path: Path, captured: Captured) -> None:
    assert run(tmp_path, "status", "--region", "example") == ExitCode.OK
    err = captured[1].getvalue()
    assert f"No journal for region example in {(tmp_path / 'state').resolve()}" in err
    assert "--state-dir or ROLLOUT_STATE_DIR" in err
    assert "Next: rollout plan --region example" in err
    assert not (tmp_path / "state" / "example" / "journal.sqlite").exists()


def test_history_without_journal_says_where_it_looked(tmp_path: Path, captured: Captured) -> None:
    assert run(tmp_path, "history", "--region", "example") == ExitCode.OK
    assert f"no journal in {(tmp_path / 'state').resolve()}" in captured[1].getvalue()


def test_unlock_without_journal_creates_nothing(tmp_path: Path, captured: Captured) -> None:
    assert run(tmp_path, "unlock", "--region", "nosuch", "--force", "deadbeef") == ExitCode.USAGE
    assert "no journal for region `nosuch`" in captured[1].getvalue()
    assert not (tmp_path / "state" / "nosuch").exists()
    with Journal.open("example", tmp_path / "state"):
        pass
    assert run(tmp_path, "unlock", "--region", "exmaple", "--force", "deadbeef") == ExitCode.USAGE
    assert "regions with a journal there: example" in captured[1].getvalue()
    assert not (tmp_path / "state" / "exmaple").exists()


# -- explain / node names ---------------------------------------------------------------------------------

def test_explain_offline_says_it_did_not_observe(tmp_path: Path, captured: Captured) -> None:
    assert run(tmp_path, "explain", "ex-r2-n05", "--region", "example", "--offline") == ExitCode.OK
    err = captured[1].getvalue()
    assert "observed method: not observed (--offline)" in err and "(from unknown)" not in err


@pytest.mark.parametrize("args", [
    ("explain", "ex-r1-n1", "--offline"),
    ("explain", "ex-r1-n1", "--region", "example", "--offline"),
    ("reimage", "ex-r1-n1"),
])
def test_node_typo_suggests_close_names(tmp_path: Path, captured: Captured, args: tuple[str, ...]) -> None:
    assert run(tmp_path, *args) == ExitCode.USAGE
    assert "Hint: did you mean ex-r1-n01" in captured[1].getvalue()
    assert not (tmp_path / "state" / "example").exists()


def test_history_of_unknown_node_says_so(tmp_path: Path, captured: Captured) -> None:
    assert run(tmp_path, "history", "--region", "example", "--node", "ex-r1-n1") == ExitCode.OK
    assert "no inventory lists a node `ex-r1-n1`: did you mean ex-r1-n01" in captured[1].getvalue()


# -- the typed confirmation, Ctrl-C --------------------------------------------------------------------------

class OfflineSession:
    """Stands in for `rollout.app.applying.Session`: plans offline, never locks, observes or executes."""

    executed: ClassVar[list[str]] = []

    def __init__(self, ctx: Any, request: Any, say: Any) -> None:
        self.run_id, self.artifacts = "TEST", Path("/nonexistent")
        self.result = plan_region(ctx, request.region, limit=request.limit, reimage=request.reimage)
        self.source = self.result.source

    def __enter__(self) -> OfflineSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def plan(self) -> tuple[Any, None, dict[str, Any]]:
        return self.result.plan, None, {}

    def execute(self, *args: Any) -> Any:
        self.executed.append(self.run_id)
        raise KeyboardInterrupt  # as the engine does on a second Ctrl-C


def _prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, answer: str | BaseException) -> tuple[int, str, str]:
    monkeypatch.setattr(engine, "Session", OfflineSession)
    OfflineSession.executed = []
    out, err = io.StringIO(), io.StringIO()
    con = PromptConsole(answer, out, err)
    old = set_console(con)
    try:
        code = run(tmp_path, "reimage", "ex-r1-n02", "--region", "example", "--reason", "test")
    finally:
        set_console(old)
    assert con.prompts and "Type `ex-r1-n02` to go on" in con.prompts[0]
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("key", [KeyboardInterrupt(), EOFError()], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_or_ctrl_d_at_the_prompt_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         key: BaseException) -> None:
    code, _, err = _prompt(tmp_path, monkeypatch, key)
    assert code == ExitCode.INTERRUPTED
    assert "Error: interrupted at the confirmation prompt; nothing was changed" in err
    assert OfflineSession.executed == []


def test_wrong_word_says_what_was_typed_and_what_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _prompt(tmp_path, monkeypatch, "yes")
    assert code == ExitCode.ERROR
    assert "You typed 'yes', not `ex-r1-n02`: not confirmed; nothing was changed." in err
    assert "Next: run the same command again and type `ex-r1-n02` exactly" in err
    assert OfflineSession.executed == []


def test_second_ctrl_c_during_the_run_says_how_to_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _prompt(tmp_path, monkeypatch, "ex-r1-n02")
    assert OfflineSession.executed == ["TEST"]
    assert code == ExitCode.INTERRUPTED
    assert "aborted by a second Ctrl-C" in err
    assert "Next: rollout status --region example, then `rollout apply --region example` (resumes" in err


def test_ctrl_c_in_any_command_ends_with_a_line(tmp_path: Path, captured: Captured,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import rollout.cli.commands.planning as planning

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(planning, "plan_region", interrupted)
    assert run(tmp_path, "plan", "--region", "example") == ExitCode.INTERRUPTED
    assert "Error: interrupted" in captured[1].getvalue()  # typer alone exits 130 without a word


def test_ctrl_c_while_the_cli_loads_is_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The first half second of every command is importing typer, ansible-core, kubernetes, sushy."""
    import sys

    import rollout.cli

    class InterruptedImport:
        def find_spec(self, name: str, *args: Any) -> None:
            if name == "rollout.cli.root":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "rollout.cli.root")
    monkeypatch.delattr(rollout.cli, "root")
    monkeypatch.setattr(sys, "meta_path", [InterruptedImport(), *sys.meta_path])
    assert main(["plan", "--region", "example"]) == ExitCode.INTERRUPTED
    assert capsys.readouterr().err == "\nError: interrupted\n"


def test_the_entry_point_imports_nothing_heavy() -> None:
    """What the `rollout` script runs before main(): a Ctrl-C there could not be caught."""
    import subprocess
    import sys

    probe = ("import sys; from rollout.cli.main import main; "
             "print(sorted(m for m in ('rollout.cli.root', 'typer', 'ansible', 'kubernetes') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_unexpected_error_is_one_line_unless_debug(tmp_path: Path, captured: Captured,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import rollout.cli.commands.planning as planning

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(planning, "plan_region", boom)
    assert run(tmp_path, "plan", "--region", "example") == ExitCode.ERROR
    assert "Error: unexpected RuntimeError: boom" in captured[1].getvalue() and "--debug" in captured[1].getvalue()
    assert "Traceback" not in capsys.readouterr().err
    assert main(["--debug", "--inventory-root", INV, "plan", "--region", "example"]) == ExitCode.ERROR
    assert "Traceback" in capsys.readouterr().err


def test_render_without_capi_templates_is_a_configuration_error(tmp_path: Path, captured: Captured,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import rollout.cli.commands.render as render

    def missing(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError(2, "No such file or directory", "/site-packages/capi/variables.yml")

    monkeypatch.setattr(render, "render", missing)
    code = run(tmp_path, "render", "--region", "example", "--check", "--bundle-sha256", "ab" * 32)
    assert code == ExitCode.USAGE
    assert "cannot read /site-packages/capi/variables.yml" in captured[1].getvalue()
    assert "ROLLOUT_PROJECT_DIR" in captured[1].getvalue()


# -- global options, completion ---------------------------------------------------------------------------

def test_global_options_typed_once_are_mentioned_for_the_next_commands(tmp_path: Path, captured: Captured,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--inventory-root", INV, "plan", "--region", "example"]) == ExitCode.OK
    err = captured[1].getvalue()
    assert "Next: rollout render --region example" in err  # the Next line itself is unchanged
    assert f"need the same --inventory-root {INV}; or export ROLLOUT_INVENTORY_ROOT={INV}" in err
    assert err.rstrip().splitlines()[-1].startswith("Next: ")  # output still ends with the next command
    captured[1].truncate(0)
    captured[1].seek(0)
    monkeypatch.setenv("ROLLOUT_INVENTORY_ROOT", INV)
    assert main(["plan", "--region", "example"]) == ExitCode.OK
    assert "need the same" not in captured[1].getvalue()


def test_completion_reads_the_inventory_root_on_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "inv" / "only-here").mkdir(parents=True)
    (tmp_path / "inv" / "only-here" / "region.yml").write_text("name: only-here\n")
    words = ["rollout", "--inventory-root", str(tmp_path / "inv"), "render", "--region", ""]
    monkeypatch.setenv("_ROLLOUT_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", " ".join(words))
    monkeypatch.setenv("COMP_CWORD", str(len(words) - 1))
    with pytest.raises(SystemExit):
        main(words[1:])
    offered = capsys.readouterr().out.split()
    assert offered == ["only-here"]  # not the regions of ./inventories; and render completes regions too


def test_no_secret_in_the_new_messages(tmp_path: Path, captured: Captured) -> None:
    from rollout.inventory import load_region

    secrets = load_region(Path(INV), "example").secret_values()
    run(tmp_path, "status", "--region", "example")
    run(tmp_path, "explain", "ex-r1-n1", "--offline")
    run(tmp_path, "plan")
    text = captured[0].getvalue() + captured[1].getvalue()
    assert text and not any(re.search(re.escape(value), text) for value in secrets)
