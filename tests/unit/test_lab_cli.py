"""Unit tests: `rollout lab` CLI paths that need no podman (no lab, bad sizes, refused resize)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console as RichConsole

from rollout.cli.console import Console, set_console
from rollout.cli.main import main
from rollout.exitcodes import ExitCode
from rollout.lab.state import LabPaths, save_state


@pytest.fixture()
def captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    old = set_console(Console(stdout=RichConsole(file=out, width=200),
                              stderr=RichConsole(file=err, width=200)))
    try:
        yield out, err
    finally:
        set_console(old)


def _run(tmp_path: Path, *args: str) -> int:
    dirs = ["--state-dir", str(tmp_path / "state"), "--inventory-root", str(tmp_path / "inv")]
    return main([*dirs, "lab", *args])


Captured = tuple[io.StringIO, io.StringIO]


def test_status_without_a_lab_is_an_error_with_json(tmp_path: Path, captured: Captured) -> None:
    out, err = captured
    assert _run(tmp_path, "status", "-o", "json") == ExitCode.ERROR
    doc = json.loads(out.getvalue())
    assert doc["schema"] == "rollout.lab.status/v1" and doc["exists"] is False
    assert "rollout lab up" in err.getvalue()


@pytest.mark.parametrize("args", [("--racks", "0"), ("--nodes-per-rack", "10")])
def test_out_of_range_size_is_a_usage_error(
        tmp_path: Path, captured: Captured, args: tuple[str, ...]) -> None:
    _, err = captured
    assert _run(tmp_path, "up", *args) == ExitCode.USAGE
    assert "must be 1..9" in err.getvalue()
    assert not (tmp_path / "state" / "lab" / "state.json").exists()


def test_resizing_an_existing_lab_is_refused_before_any_change(
        tmp_path: Path, captured: Captured) -> None:
    _, err = captured
    paths = LabPaths(tmp_path / "state" / "lab")
    save_state(paths, {"spec": {"racks": 1, "nodes_per_rack": 2}})
    assert _run(tmp_path, "up", "--racks", "3") == ExitCode.ERROR
    assert "rollout lab down" in err.getvalue()
    assert sorted(p.name for p in paths.root.iterdir()) == ["state.json"]


def test_down_without_a_lab_does_nothing(tmp_path: Path, captured: Captured) -> None:
    _, err = captured
    assert _run(tmp_path, "down") == ExitCode.OK
    assert "nothing to remove" in err.getvalue()
