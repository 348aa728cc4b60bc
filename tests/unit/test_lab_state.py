"""Unit tests: the lab's state files (state.json, reinstalls.jsonl) and key helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rollout.lab.lifecycle import LabError, resolve_spec
from rollout.lab.pki import ensure_ssh_key, fingerprint
from rollout.lab.state import (
    LabPaths,
    append_reinstall,
    load_state,
    read_reinstalls,
    record_created,
    save_state,
)
from rollout.lab.topology import LabSpec


def test_state_round_trip_and_version(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path / "lab")
    assert load_state(paths) is None
    state: dict = {"spec": {"racks": 1, "nodes_per_rack": 2}}
    record_created(state, "container", "rollout-lab-a")
    record_created(state, "container", "rollout-lab-a")
    record_created(state, "container", "rollout-lab-b")
    save_state(paths, state)
    loaded = load_state(paths)
    assert loaded is not None
    assert loaded["created"]["container"] == ["rollout-lab-a", "rollout-lab-b"]
    assert loaded["version"] == 1
    paths.state_file.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="version"):
        load_state(paths)


def test_no_temporary_files_left_after_save(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    save_state(paths, {"spec": {}})
    save_state(paths, {"spec": {"racks": 2}})
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_reinstalls_are_appended_and_filtered(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    assert read_reinstalls(paths) == []
    append_reinstall(paths, {"node": "r1-n01", "boot_source": "Pxe"})
    append_reinstall(paths, {"node": "r1-n02", "boot_source": "Cd"})
    append_reinstall(paths, {"node": "r1-n01", "boot_source": "Pxe"})
    assert len(read_reinstalls(paths)) == 3
    assert [r["boot_source"] for r in read_reinstalls(paths, "r1-n02")] == ["Cd"]
    assert len(read_reinstalls(paths, "r1-n01")) == 2


def test_resolve_spec_defaults_and_refuses_resize(tmp_path: Path) -> None:
    paths = LabPaths(tmp_path)
    assert resolve_spec(paths, None, None) == LabSpec(3, 2)
    assert resolve_spec(paths, 1, None) == LabSpec(1, 2)
    save_state(paths, {"spec": {"racks": 1, "nodes_per_rack": 2}})
    assert resolve_spec(paths, None, None) == LabSpec(1, 2)
    with pytest.raises(LabError, match="lab down"):
        resolve_spec(paths, 3, 2)


def test_fingerprint_matches_ssh_keygen() -> None:
    # Expected value printed by `ssh-keygen -lf` (OpenSSH 9.2) for this public key.
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAoEyIJvQIXRpoS7i/FBPF8+ZnkOvJtVWVTKuwa80k4y x"
    assert fingerprint(line) == "SHA256:39PT5YvBTBU1SRdQNJVlzH9IHikXWkRgyDFr2KXP668"
    with pytest.raises(ValueError):
        fingerprint("garbage")


def test_ssh_key_generated_once_with_private_mode(tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    pub1 = ensure_ssh_key(key)
    pub2 = ensure_ssh_key(key)
    assert pub1 == pub2 and pub1.startswith("ssh-ed25519 ")
    assert key.stat().st_mode & 0o777 == 0o600
    assert "OPENSSH PRIVATE KEY" in key.read_text()


def test_lab_down_moves_the_region_journal_aside(tmp_path: Path) -> None:
    """The next lab must not resume operations of machines that `lab down` removed."""
    from rollout.lab.lifecycle import _archive_region_state

    paths = LabPaths(tmp_path / "lab")
    (paths.root / "runs" / "r1").mkdir(parents=True)
    (paths.root / "journal.sqlite").write_text("db")
    (paths.root / "journal.sqlite-wal").write_text("wal")
    target = _archive_region_state(paths)
    assert target is not None and target.parent == tmp_path / "lab-history"
    assert sorted(p.name for p in target.iterdir()) == ["journal.sqlite", "journal.sqlite-wal", "runs"]
    assert not (paths.root / "journal.sqlite").exists() and not (paths.root / "runs").exists()
    assert _archive_region_state(paths) is None  # nothing left to move
