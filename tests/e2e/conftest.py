"""The lab for end-to-end tests: brought up once per session through the real CLI, taken down after.

Size: `ROLLOUT_E2E_RACKS` x `ROLLOUT_E2E_NODES_PER_RACK` (default 3 x 1: three failure domains, the
minimum for size-3 pools across racks; `make lab-demo` uses the full 3 x 2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def rollout(*args: str, check: bool = False, timeout: int = 3600, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    """Run the real `rollout` CLI from the repo (as an operator would)."""
    full_env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "images" / "containers.conf"), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "rollout.cli.main", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"rollout {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass(frozen=True)
class Lab:
    nodes: tuple[str, ...]
    state: Path

    def reinstalls(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        path = self.state / "lab" / "reinstalls.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    node = json.loads(line)["node"]
                    counts[node] = counts.get(node, 0) + 1
        return counts

    def secret_leaks(self, secrets: list[str]) -> list[tuple[str, str]]:
        """(where, first 4 chars) for every secret found in the region's journal or run artifacts."""
        import sqlite3

        state = self.state / "lab"
        con = sqlite3.connect(f"file:{state / 'journal.sqlite'}?mode=ro", uri=True)
        dump = "\n".join(con.iterdump())
        con.close()
        assert "reprovision" in dump  # the journal really holds runs
        leaks = [("journal", s[:4]) for s in secrets if s in dump]
        files = [p for p in (state / "runs").rglob("*") if p.is_file()]
        assert files
        return leaks + [(str(p), s[:4]) for p in files for s in secrets if s.encode() in p.read_bytes()]

    def ceph(self, *args: str) -> object:
        out = subprocess.run(["podman", "exec", "rollout-lab-ceph", "ceph", *args, "-f", "json"],
                             capture_output=True, text=True, check=True, timeout=60,
                             env={**os.environ, "CONTAINERS_CONF": str(ROOT / "images" / "containers.conf")})
        return json.loads(out.stdout)

    def ovn_chassis(self) -> list[dict[str, object]]:
        from rollout.backends.ovn import parse_chassis

        out = subprocess.run(["podman", "exec", "rollout-lab-ovn", "ovn-sbctl", "--format=json", "list", "Chassis"],
                             capture_output=True, text=True, check=True, timeout=60,
                             env={**os.environ, "CONTAINERS_CONF": str(ROOT / "images" / "containers.conf")})
        return [{"name": c.name, "hostname": c.hostname} for c in parse_chassis(out.stdout)]


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    racks = os.environ.get("ROLLOUT_E2E_RACKS", "3")
    per = os.environ.get("ROLLOUT_E2E_NODES_PER_RACK", "1")
    rollout("lab", "up", "--racks", racks, "--nodes-per-rack", per, check=True)
    status = json.loads(rollout("lab", "status", "-o", "json", check=True).stdout)
    nodes = tuple(sorted(c["name"] for c in status["components"] if c["kind"] == "node"))
    assert nodes, status
    yield Lab(nodes=nodes, state=ROOT / ".rollout")
    if not request.config.getoption("--keep-lab"):
        rollout("lab", "down")
