"""The lab's files on the host, all under one state directory (default `<repo>/.rollout/lab/`).

Invariants:
- `state.json` records exactly what `lab up` created (containers, volumes, network, ports, pid
  files); `lab down` removes what it lists and nothing else. It is written atomically (tmp + rename)
  so a crash never leaves half a file.
- `reinstalls.jsonl` is append-only: one JSON record per re-install, never rewritten. Tests count
  records per node to prove "re-imaged exactly once".
- secrets (SSH private key, TLS key, vault password, htpasswd) are created mode 0600 in 0700 dirs.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollout.lab.podman import REPO_ROOT

STATE_VERSION = 1
DEFAULT_STATE_DIR = REPO_ROOT / ".rollout" / "lab"
DEFAULT_INVENTORY_DIR = REPO_ROOT / "inventories" / "lab"


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @classmethod
    def default(cls) -> LabPaths:
        return cls(Path(os.environ.get("ROLLOUT_LAB_STATE_DIR", DEFAULT_STATE_DIR)))

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def reinstalls(self) -> Path:
        return self.root / "reinstalls.jsonl"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def ssh_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def bmc_dir(self) -> Path:
        return self.root / "bmc"

    @property
    def vault_password_file(self) -> Path:
        return self.root / "vault-password.txt"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    def ensure(self) -> None:
        for d in (self.root, self.ssh_dir, self.pki_dir, self.bmc_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(paths: LabPaths) -> dict[str, Any] | None:
    if not paths.state_file.exists():
        return None
    data: dict[str, Any] = json.loads(paths.state_file.read_text())
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"{paths.state_file}: unsupported lab state version {data.get('version')!r}")
    return data


def save_state(paths: LabPaths, state: dict[str, Any]) -> None:
    state = {**state, "version": STATE_VERSION}
    write_atomic(paths.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n")


def record_created(state: dict[str, Any], kind: str, name: str) -> None:
    """Remember that the lab created podman object `name` of `kind` (idempotent, order kept)."""
    items = state.setdefault("created", {}).setdefault(kind, [])
    if name not in items:
        items.append(name)


def append_reinstall(paths: LabPaths, record: dict[str, Any]) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True)
    # O_APPEND writes of one short line are atomic enough for one writer (the provisioner).
    with open(paths.reinstalls, "a") as fh:
        fh.write(line + "\n")


def read_reinstalls(paths: LabPaths, node: str | None = None) -> list[dict[str, Any]]:
    if not paths.reinstalls.exists():
        return []
    records = [json.loads(line) for line in paths.reinstalls.read_text().splitlines() if line.strip()]
    return [r for r in records if node is None or r.get("node") == node]
