"""Find and stop Ansible runs left behind by a rollout process that died (SIGKILL, OOM, power loss).

Why: ansible-runner starts `ansible-playbook` on a pseudo-terminal in its own session, so when
the rollout process is killed the playbook keeps running, and a resumed run would configure the
same node at the same time. Every run rollout starts carries marker variables in its environment
(`ROLLOUT_SCOPE` = the region's state dir, `ROLLOUT_RUN_ID`, `ROLLOUT_STEP`); the environment is
inherited by the playbook's forks and its ssh children, so the marker finds all of them.

Invariants:
- Called only by the holder of the region lock (on this host, for this state dir): no live rollout
  of the same region owns a marked process then, so every marked process is an orphan.
- The caller's own process and its ancestors are never touched.
- Stopping is SIGTERM to each orphan's process group (ansible-playbook and its workers share one),
  a grace period, then SIGKILL; `stop_orphans` returns only when none of them runs any more or
  raises when one survives SIGKILL (the caller must not go on configuring the node then).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rollout.errors import TransientError

SCOPE_ENV = "ROLLOUT_SCOPE"
RUN_ENV = "ROLLOUT_RUN_ID"
STEP_ENV = "ROLLOUT_STEP"


@dataclass(frozen=True)
class MarkedProcess:
    pid: int
    pgid: int
    run_id: str
    step: str
    command: str  # argv[0..2], enough to tell ansible-playbook from ssh; no arguments (no secrets)

    def describe(self) -> str:
        return f"pid {self.pid} ({self.command}; run {self.run_id}, step {self.step})"


def marker_env(scope: Path | str, run_id: str, step: str) -> dict[str, str]:
    return {SCOPE_ENV: str(scope), RUN_ENV: run_id, STEP_ENV: step}


def _environ(pid: int) -> dict[str, str] | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key in (SCOPE_ENV.encode(), RUN_ENV.encode(), STEP_ENV.encode()):
            env[key.decode()] = value.decode(errors="replace")
    return env


def _command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    # python's argv[0] is the interpreter; the script name (ansible-playbook) follows.
    return " ".join(os.path.basename(a.decode(errors="replace")) for a in argv[:2] if a)


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(raw[raw.rfind(")") + 2 :].split()[1])
    return seen


def find_marked(scope: Path | str) -> list[MarkedProcess]:
    """Processes on this host whose environment says they were started for `scope`."""
    mine = _ancestors(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        pid = int(entry.name)
        env = _environ(pid)
        if not env or env.get(SCOPE_ENV) != str(scope):
            continue
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            continue
        found.append(MarkedProcess(pid=pid, pgid=pgid, run_id=env.get(RUN_ENV, "?"),
                                   step=env.get(STEP_ENV, "?"), command=_command(pid)))
    return sorted(found, key=lambda p: p.pid)


def _alive(pids: Iterable[int]) -> list[int]:
    left = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        # A zombie is dead for our purpose: it runs nothing and only waits for its (dead) parent.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            left.append(pid)
    return left


def _signal_groups(procs: Iterable[MarkedProcess], sig: signal.Signals) -> None:
    own = os.getpgrp()
    for pgid in {p.pgid for p in procs}:
        if pgid == own:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for p in procs:  # a marked process that left its group (ssh ControlPersist daemonises)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p.pid, sig)


def stop_orphans(procs: list[MarkedProcess], *, grace: float = 10.0, poll: float = 0.1) -> list[MarkedProcess]:
    """SIGTERM, wait up to `grace` seconds, SIGKILL what is left; returns the processes stopped."""
    if not procs:
        return []
    _signal_groups(procs, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _alive(p.pid for p in procs) and time.monotonic() < deadline:
        time.sleep(poll)
    left = [p for p in procs if p.pid in _alive(p.pid for p in procs)]
    if left:
        _signal_groups(left, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _alive(p.pid for p in left) and time.monotonic() < deadline:
            time.sleep(poll)
        survivors = _alive(p.pid for p in left)
        if survivors:
            raise TransientError(
                f"could not stop Ansible processes left by a previous run: pids {', '.join(map(str, survivors))}",
                hint="stop them by hand (`kill -9 PID`), then re-run the command",
            )
    return procs
