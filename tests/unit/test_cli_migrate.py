"""`rollout migrate` through the CLI entry point: help with examples, usage errors, and no contact with
the `example` region's imaginary clusters (its kubeconfig does not exist -> configuration error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rollout.cli.main import main
from tests.unit.factories import reachable_example

ROOT = Path(__file__).resolve().parents[2]
INV = str(ROOT / "inventories")


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--inventory-root", INV, "--state-dir", str(tmp_path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_has_examples(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["migrate", "--help"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "rollout migrate --region example --to capi --limit rack_r1" in out
    assert "operationalStatus" in out


def test_bad_target_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path, "migrate", "--region", "example", "--to", "salt")
    assert code == 64
    assert "--to must be capi or ansible" in err


def test_a_region_on_paper_is_refused_before_anything(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, tmp_path, "migrate", "--region", "example", "--to", "capi", "--yes")
    assert code == 3
    assert "region example is on paper (`offline: true`" in err and "imaginary addresses" in err
    assert not (tmp_path / "example" / "journal.sqlite").exists()  # refused before the journal was opened


def test_missing_management_kubeconfig_stops_before_anything(capsys: pytest.CaptureFixture[str],
                                                            tmp_path: Path) -> None:
    inv = reachable_example(tmp_path / "inv")
    code = main(["--inventory-root", str(inv), "--state-dir", str(tmp_path / "state"),
                 "migrate", "--region", "example", "--to", "capi", "--yes"])
    _, err = capsys.readouterr()
    assert code == 64
    assert "management kubeconfig" in err and "does not exist" in err
    assert not (tmp_path / "state" / "example" / "journal.sqlite").exists()  # refused before the journal
