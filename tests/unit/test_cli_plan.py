"""`rollout plan` / `validate` through the CLI entry point, on the shipped `example` region (offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollout.cli.main import main
from rollout.render.plan_json import plan_from_json, plan_to_json
from tests.unit.factories import reachable_example

ROOT = Path(__file__).resolve().parents[2]
INV = str(ROOT / "inventories")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--inventory-root", INV, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_text_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "--region", "example")
    assert code == 0
    assert out == ""  # people output goes to stderr
    assert "Blast radius:" in err and "rack r1:" in err and "ex-r3-n06" in err
    assert "Next: rollout render --region example" in err  # a region on paper: never apply


def test_plan_json_is_versioned_with_action_and_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "--region", "example", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "rollout.plan/v1"
    assert len(doc["actions"]) == 18
    for action in doc["actions"]:
        assert action["action"] in {"provision", "configure", "reimage", "migrate-to-capi", "migrate-to-ansible",
                                    "none"}
        assert action["reason"] or action["skip_reason"]
    assert plan_to_json(plan_from_json(out)) == out  # round trip


def test_detailed_exitcode_and_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "--region", "example", "-o", "json", "--limit", "rack_r2:!ex-r2-n01",
                       "--detailed-exitcode")
    assert code == 2
    doc = json.loads(out)
    changed = sorted(a["node"] for a in doc["actions"] if a["action"] != "none")
    assert changed == [f"ex-r2-n0{i}" for i in range(2, 7)]


def test_observed_file_drives_migration_and_skips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    observed = {
        "schema": "rollout.observation/v1", "region": "example",
        "nodes": [{"name": "ex-r1-n01", "managed_by": "capi"}, {"name": "ex-r1-n02", "managed_by": "none"},
                  {"name": "ex-r1-n03", "managed_by": "ansible", "quarantined": "BMC unreachable"}],
    }
    path = tmp_path / "observed.json"
    path.write_text(json.dumps(observed))
    code, out, _ = run(capsys, "plan", "--region", "example", "-o", "json", "--observed", str(path))
    assert code == 0
    actions = {a["node"]: a for a in json.loads(out)["actions"]}
    assert actions["ex-r1-n01"]["action"] == "migrate-to-ansible"
    assert actions["ex-r1-n02"]["action"] == "provision"
    assert actions["ex-r1-n03"]["action"] == "none"
    assert "BMC unreachable" in actions["ex-r1-n03"]["skip_reason"]


def test_bad_observed_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "observed.json"
    path.write_text(json.dumps({"schema": "rollout.observation/v1", "nodes": [{"name": "nope"}]}))
    code, _, err = run(capsys, "plan", "--region", "example", "--observed", str(path))
    assert code == 64
    assert "nodes[0].name `nope`" in err and "Traceback" not in err


def test_unknown_region_and_limit(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "plan", "--region", "nowhere")
    assert code == 64 and "known regions:" in err and "example" in err
    code, _, err = run(capsys, "plan", "--region", "example", "--limit", "no-such-host")
    assert code == 64 and "matches no node" in err


def test_secrets_never_in_plan_output(capsys: pytest.CaptureFixture[str]) -> None:
    from rollout.inventory import load_region

    secrets = load_region(Path(INV), "example").secret_values()
    assert secrets  # the example vault holds BMC passwords, a GRID token, a join token
    _, out, err = run(capsys, "plan", "--region", "example", "-o", "json", "--reimage", "ex-r1-n01", "-v")
    _, _, err2 = run(capsys, "plan", "--region", "example", "-v")
    for value in secrets:
        assert value not in out + err + err2


def test_help_has_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--help"])
    out = capsys.readouterr().out
    assert code == 0 and "Examples:" in out and "rollout plan --region example" in out
    main(["--help"])
    assert "Exit codes:" in capsys.readouterr().out


def test_a_region_on_paper_is_never_contacted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    state = tmp_path / "state"
    for verb in (["apply", "--region", "example", "--yes"], ["reimage", "ex-r1-n01", "--region", "example", "--yes"]):
        code, _, err = run(capsys, "--state-dir", str(state), *verb)
        assert code == 3, err
        assert "region example is on paper (`offline: true`" in err
    assert not (state / "example").exists()  # refused before journal, lock or artifacts
    code, _, err = run(capsys, "--state-dir", str(state), "plan", "--region", "example")
    assert code == 0 and "Observation: none (region.yml says `offline: true`)" in err


def test_plan_offline_flag_skips_observation_of_a_real_region(capsys: pytest.CaptureFixture[str],
                                                             tmp_path: Path) -> None:
    inv = reachable_example(tmp_path / "inv")
    code = main(["--inventory-root", str(inv), "--state-dir", str(tmp_path / "state"), "plan", "--region",
                 "example", "--offline"])
    _, err = capsys.readouterr()
    assert code == 0
    assert "Observation: none (--offline): every node's state counts as unknown." in err
    assert "Next: rollout apply --region example" in err
