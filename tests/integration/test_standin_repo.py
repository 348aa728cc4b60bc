"""images/build-standin-repo.sh: the local apt repo of stand-in packages is reproducible and well-formed.

Invariants checked (side effects: runs the script and dpkg-deb, writes under tmp_path only):
- two builds from the same sources are byte-identical (debs and indexes);
- every pool is a flat apt repo whose Packages index names each .deb with its real size and SHA256;
- each Kubernetes pool holds exactly one minor; the top-level index holds every pool;
- every package says STAND-IN in its description (nobody mistakes it for vendor software);
- the Python stand-ins compile.
"""

from __future__ import annotations

import hashlib
import os
import py_compile
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "images" / "build-standin-repo.sh"


def _build(out: Path) -> Path:
    res = subprocess.run([str(SCRIPT), str(out)], capture_output=True, text=True, check=True, timeout=300)
    assert res.stdout.strip() == str(out)
    return out


def _stanzas(index: Path) -> list[dict[str, str]]:
    out = []
    for block in index.read_text().strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(" "):
                key, _, value = line.partition(": ")
                fields[key] = value
        out.append(fields)
    return out


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("standin") / "repo")


def test_build_is_reproducible(repo: Path, tmp_path: Path) -> None:
    other = _build(tmp_path / "again")
    files = sorted(p.relative_to(repo) for p in repo.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file())
    for rel in files:
        assert (repo / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_indexes_match_the_debs(repo: Path) -> None:
    indexes = sorted(repo.rglob("Packages"))
    assert len(indexes) == 5  # top level + kubernetes/v1.30, v1.31 + nvidia/16.9, 17.5
    for index in indexes:
        base = index.parent
        stanzas = _stanzas(index)
        assert stanzas, index
        listed = set()
        for st in stanzas:
            deb = base / st["Filename"]
            assert deb.is_file(), st["Filename"]
            assert int(st["Size"]) == deb.stat().st_size
            assert st["SHA256"] == hashlib.sha256(deb.read_bytes()).hexdigest()
            listed.add(deb.resolve())
        assert listed == {p.resolve() for p in base.rglob("*.deb")}


def test_pools_hold_one_minor_each(repo: Path) -> None:
    def versions(pool: str, name: str) -> set[str]:
        return {s["Version"] for s in _stanzas(repo / pool / "Packages") if s["Package"] == name}

    assert versions("kubernetes/v1.31", "kubeadm") == {"1.31.4-1.1"}
    assert versions("kubernetes/v1.30", "kubelet") == {"1.30.8-1.1"}
    assert versions("nvidia/16.9", "nvidia-vgpu-manager") == {"535.230.02"}
    assert versions(".", "nvidia-linux-grid") == {"535.230.02", "550.144.02"}
    # Each pool must be installable on its own: the shared helper package is in every pool.
    for pool in ("kubernetes/v1.30", "kubernetes/v1.31", "nvidia/16.9", "nvidia/17.5"):
        assert versions(pool, "rollout-standin-common") == {"1.0"}


def test_every_package_is_labelled_stand_in(repo: Path) -> None:
    for st in _stanzas(repo / "Packages"):
        if st["Package"] != "rollout-standin-common":
            assert "STAND-IN" in st["Description"], st["Package"]


def test_versions_are_substituted(repo: Path, tmp_path: Path) -> None:
    deb = next(repo.glob("kubernetes/v1.30/kubeadm_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    text = (tmp_path / "usr/bin/kubeadm").read_text()
    assert 'VERSION = "v1.30.8"' in text and "@UPSTREAM@" not in text
    assert os.access(tmp_path / "usr/bin/kubeadm", os.X_OK)


def test_python_stand_ins_compile(tmp_path: Path) -> None:
    src = REPO / "images" / "standin"
    scripts = [
        p
        for p in src.rglob("*")
        if p.is_file() and not p.is_symlink() and p.read_bytes().startswith(b"#!/usr/bin/python3")
    ]
    scripts.append(src / "rollout-standin-common/usr/lib/python3/dist-packages/rollout_standin.py")
    assert len(scripts) >= 7
    for script in scripts:
        py_compile.compile(str(script), cfile=str(tmp_path / (script.name + ".pyc")), doraise=True)
