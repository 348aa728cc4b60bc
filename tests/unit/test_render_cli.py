"""`rollout render` and `rollout bundle build` through the real CLI entry point."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console as RichConsole

from rollout.cli.console import Console, set_console
from rollout.cli.main import main
from rollout.inventory import load_region

ROOT = Path(__file__).resolve().parents[2]
INV = str(ROOT / "inventories")
SHA = "ab" * 32


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    out, err = io.StringIO(), io.StringIO()
    old = set_console(
        Console(stdout=RichConsole(file=out, width=200), stderr=RichConsole(file=err, width=200))
    )
    yield out, err
    set_console(old)


def test_check_writes_nothing_and_lists_required_secrets(
    captured: tuple[io.StringIO, io.StringIO], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["--inventory-root", INV, "render", "--region", "example", "--check", "--bundle-sha256", SHA])
    out, err = captured
    assert code == 0, err.getvalue()
    assert out.getvalue() == ""
    text = err.getvalue()
    assert "18 BareMetalHost" in text and "example-infra-ca  keys: tls.crt, tls.key" in text
    assert "ex-r2-n04-bmc  keys: username, password" in text
    assert list(tmp_path.iterdir()) == []


def test_stdout_yaml_has_no_secret_values(captured: tuple[io.StringIO, io.StringIO]) -> None:
    code = main(["--inventory-root", INV, "render", "--region", "example", "--bundle-sha256", SHA])
    out, err = captured
    assert code == 0
    assert "kind: BareMetalHost" in out.getvalue() and f"ROLLOUT_BUNDLE_SHA256={SHA}" in out.getvalue()
    both = out.getvalue() + err.getvalue()
    for value in load_region(Path(INV), "example").secret_values():
        assert value not in both


def test_include_secrets_needs_out(captured: tuple[io.StringIO, io.StringIO]) -> None:
    code = main(
        [
            "--inventory-root",
            INV,
            "render",
            "--region",
            "example",
            "--include-secrets",
            "--bundle-sha256",
            SHA,
        ]
    )
    assert code == 64
    assert "--include-secrets needs --out" in captured[1].getvalue()


def test_out_with_secrets(captured: tuple[io.StringIO, io.StringIO], tmp_path: Path) -> None:
    code = main(
        [
            "--inventory-root",
            INV,
            "render",
            "--region",
            "example",
            "--out",
            str(tmp_path / "m"),
            "--include-secrets",
            "--bundle-sha256",
            SHA,
        ]
    )
    assert code == 0, captured[1].getvalue()
    assert (tmp_path / "m" / "secrets" / "00-secrets.yaml").exists()
    assert sorted(p.name for p in (tmp_path / "m").glob("*.yaml"))[0] == "10-cluster.yaml"
    assert "example-infra-kubeconfig" in captured[1].getvalue()
    assert "ex-r1-n01-bmc" not in captured[1].getvalue()  # rendered, so not listed as missing


def test_missing_crd_dir_fails(captured: tuple[io.StringIO, io.StringIO], tmp_path: Path) -> None:
    code = main(
        [
            "--inventory-root",
            INV,
            "render",
            "--region",
            "example",
            "--check",
            "--bundle-sha256",
            SHA,
            "--crd-dir",
            str(tmp_path / "absent"),
        ]
    )
    assert code == 64
    assert "does not exist" in captured[1].getvalue()


def test_limit(captured: tuple[io.StringIO, io.StringIO]) -> None:
    code = main(
        [
            "--inventory-root",
            INV,
            "render",
            "--region",
            "example",
            "--limit",
            "ex-r1-n05",
            "--bundle-sha256",
            SHA,
        ]
    )
    assert code == 0
    assert re.findall(r"kind: BareMetalHost\n(?:.*\n)*?  name: (\S+)", captured[0].getvalue()) == [
        "ex-r1-n05"
    ]


def test_render_uses_the_real_bundle_digest(
    captured: tuple[io.StringIO, io.StringIO], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "roles" / "r" / "tasks").mkdir(parents=True)
    (project / "roles" / "r" / "tasks" / "main.yml").write_text("---\n- ansible.builtin.debug: {msg: hi}\n")
    (project / "playbooks").mkdir()
    (project / "playbooks" / "node_bundle.yml").write_text("---\n- hosts: all\n  roles: [r]\n")
    monkeypatch.setenv("ROLLOUT_PROJECT_DIR", str(project))
    code = main(
        [
            "--inventory-root",
            INV,
            "--state-dir",
            str(tmp_path / "state"),
            "bundle",
            "build",
            "--region",
            "example",
        ]
    )
    assert code == 0, captured[1].getvalue()
    sha, path = captured[0].getvalue().split()
    assert Path(path).name == f"rollout-bundle-example-{sha[:16]}.tar.gz" and Path(path).is_file()
    captured[0].truncate(0), captured[0].seek(0)
    assert main(["--inventory-root", INV, "render", "--region", "example", "--limit", "ex-r1-n01"]) == 0
    assert f"ROLLOUT_BUNDLE_SHA256={sha}" in captured[0].getvalue()
