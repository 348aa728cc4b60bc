"""Bad-inventory corpus: every case must exit 64, name its field/host/file, and touch nothing.

The cases live in tests/fixtures/bad_inventories.yml; each edits a copy of the valid `mini` region.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollout.cli.main import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = yaml.safe_load((FIXTURES / "bad_inventories.yml").read_text())


def _set(doc: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        key: Any = int(part) if isinstance(cur, list) else part
        if isinstance(cur, dict) and (key not in cur or cur[key] is None):
            cur[key] = {}
        cur = cur[key]
    last: Any = int(parts[-1]) if isinstance(cur, list) else parts[-1]
    cur[last] = value


def _delete(doc: Any, path: str) -> None:
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        cur = cur[int(part) if isinstance(cur, list) else part]
    del cur[int(parts[-1]) if isinstance(cur, list) else parts[-1]]


def apply_ops(root: Path, ops: list[dict[str, Any]]) -> None:
    for op in ops:
        (kind, args), = op.items()
        if kind == "copy":
            shutil.copy(root / args["src"], root / args["dst"])
            continue
        path = root / args["file"]
        if kind == "write":
            path.write_text(args["content"])
        elif kind == "append":
            path.write_text(path.read_text() + args["content"])
        else:
            doc = yaml.safe_load(path.read_text())
            if kind == "set":
                _set(doc, args["path"], args["value"])
            else:
                _delete(doc, args["path"])
            path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c["name"] for c in CASES}) == len(CASES)


def test_base_region_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(FIXTURES / "inventories" / "mini", tmp_path / "mini")
    assert main(["--inventory-root", str(tmp_path), "validate", "--region", "mini"]) == 0
    assert "is valid" in capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_inventory(case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    inv = tmp_path / "inventories"
    shutil.copytree(FIXTURES / "inventories" / "mini", inv / "mini")
    apply_ops(inv / "mini", case["ops"])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path)
    code = main(["--inventory-root", str(inv), "validate", "--region", "mini"])
    err = capsys.readouterr().err
    assert code == 64, err
    expect = case["expect"]
    assert f"field `{expect['field']}`" in err, err
    if "host" in expect:
        assert f"host {expect['host']} " in err, err
    if "file" in expect:
        assert expect["file"] in err, err
    assert "Traceback" not in err
    # Nothing else happens: no file created or removed (no state dir, no journal).
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
