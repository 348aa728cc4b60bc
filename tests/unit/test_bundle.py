"""The role bundle is reproducible, complete, and carries no secret."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
import yaml

from rollout.bundle import (
    FIXED_MTIME,
    BundleError,
    build_bundle,
    bundle_filename,
    bundle_url,
    first_boot_vars,
)
from rollout.inventory import RegionSource, load_region

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def source() -> RegionSource:
    return load_region(ROOT / "inventories", "example")


def make_project(base: Path, *, order: tuple[str, ...] = ("a", "b"), mtime: int = 1_700_000_000) -> Path:
    for name in order:
        d = base / "roles" / name / "tasks"
        d.mkdir(parents=True, exist_ok=True)
        (d / "main.yml").write_text(f"---\n- ansible.builtin.debug: {{msg: {name}}}\n")
    (base / "roles" / "a" / "files").mkdir(exist_ok=True)
    script = base / "roles" / "a" / "files" / "probe.sh"
    script.write_text("#!/bin/sh\necho ok\n")
    script.chmod(0o775)
    (base / "roles" / "a" / "molecule" / "default").mkdir(parents=True, exist_ok=True)
    (base / "roles" / "a" / "molecule" / "default" / "molecule.yml").write_text("x: 1\n")
    (base / "roles" / "a" / "tasks" / "__pycache__").mkdir(exist_ok=True)
    (base / "roles" / "a" / "tasks" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (base / "roles" / ".hidden").write_text("no\n")
    (base / "playbooks").mkdir(exist_ok=True)
    (base / "playbooks" / "node_bundle.yml").write_text("---\n- hosts: all\n  roles: [a, b]\n")
    for path in base.rglob("*"):
        os.utime(path, (mtime, mtime))
    return base


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getmembers()


def read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def test_same_inputs_same_digest_regardless_of_mtime_order_and_umask(
    source: RegionSource, tmp_path: Path
) -> None:
    a = build_bundle(source, make_project(tmp_path / "a"))
    old = os.umask(0o077)
    try:
        b = build_bundle(source, make_project(tmp_path / "b", order=("b", "a"), mtime=1_600_000_000))
    finally:
        os.umask(old)
    assert a.data == b.data and a.sha256 == b.sha256 == hashlib.sha256(a.data).hexdigest()


def test_content_change_changes_digest(source: RegionSource, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    before = build_bundle(source, project).sha256
    (project / "roles" / "b" / "tasks" / "main.yml").write_text(
        "---\n- ansible.builtin.debug: {msg: changed}\n"
    )
    assert build_bundle(source, project).sha256 != before


def test_entries_sorted_normalised_and_filtered(source: RegionSource, tmp_path: Path) -> None:
    bundle = build_bundle(source, make_project(tmp_path / "p"))
    infos = members(bundle.data)
    names = [i.name for i in infos]
    assert names == sorted(names)
    assert "roles" in names and "vars" in names  # explicit directories
    assert not [n for n in names if "molecule" in n or "__pycache__" in n or ".hidden" in n]
    assert {i.mtime for i in infos} == {FIXED_MTIME}
    assert {(i.uid, i.gid, i.uname, i.gname) for i in infos} == {(0, 0, "root", "root")}
    modes = {i.name: i.mode for i in infos}
    assert modes["roles/a/files/probe.sh"] == 0o755 and modes["roles/a/tasks/main.yml"] == 0o644
    assert modes["roles"] == 0o755
    with gzip.GzipFile(fileobj=io.BytesIO(bundle.data)) as gz:
        gz.read()
        assert gz.mtime == 0
    assert bundle.data[3] == 0  # gzip FLG: no FNAME field


def test_vars_are_the_node_vars_and_manifest_verifies(source: RegionSource, tmp_path: Path) -> None:
    bundle = build_bundle(source, make_project(tmp_path / "p"))
    for node in source.region.nodes:
        shipped = yaml.safe_load(read(bundle.data, f"vars/{node.name}.yml"))
        assert shipped == {
            **source.node_vars(node.name),
            "node_name": node.name,
            "node_class": node.node_class,
            "kubelet_join": False,
        }
        assert first_boot_vars(node) == {
            "node_name": node.name,
            "node_class": node.node_class,
            "kubelet_join": False,
        }
    manifest = read(bundle.data, "MANIFEST.sha256").decode().splitlines()
    assert len(manifest) == len(bundle.entries) - 1
    for line in manifest:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256(read(bundle.data, name)).hexdigest() == digest
    assert b"roles_path = roles" in read(bundle.data, "ansible.cfg")


def test_no_secret_in_bundle(source: RegionSource, tmp_path: Path) -> None:
    bundle = build_bundle(source, make_project(tmp_path / "p"))
    raw = b"".join(read(bundle.data, name) for name in bundle.entries)
    for value in source.secret_values():
        assert value.encode() not in raw
    for node in source.region.nodes:
        assert not set(source.node_vars(node.name)) & source.secret_var_names


def test_internal_relative_symlink_kept_others_refused(source: RegionSource, tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project / "playbooks" / "roles").symlink_to("../roles")
    infos = {i.name: i for i in members(build_bundle(source, project).data)}
    assert infos["playbooks/roles"].issym() and infos["playbooks/roles"].linkname == "../roles"
    (project / "roles" / "a" / "abs.yml").symlink_to(project / "roles" / "b" / "tasks" / "main.yml")
    with pytest.raises(BundleError, match="symlink"):
        build_bundle(source, project)
    (project / "roles" / "a" / "abs.yml").unlink()
    (project / "roles" / "a" / "out.yml").symlink_to("../../../outside.yml")
    with pytest.raises(BundleError, match="symlink"):
        build_bundle(source, project)
    shutil.rmtree(project / "playbooks")
    (project / "roles" / "a" / "out.yml").unlink()
    with pytest.raises(BundleError, match="playbooks"):
        build_bundle(source, project)


def test_names_are_content_addressed() -> None:
    assert bundle_filename("example", "ab" * 32) == "rollout-bundle-example-abababababababab.tar.gz"
    assert (
        bundle_url("http://x/b/", "example", "ab" * 32)
        == "http://x/b/rollout-bundle-example-abababababababab.tar.gz"
    )
