"""Integration: background processes tracked by pid files (start, liveness, stop, pid reuse safety)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from rollout.lab import process

pytestmark = [pytest.mark.integration]


def test_start_read_stop(tmp_path: Path) -> None:
    pid_file = tmp_path / "p.pid"
    pid = process.start([sys.executable, "-c", "import time; time.sleep(60)"], pid_file, tmp_path / "p.log")
    assert process.read_pid(pid_file) == pid
    assert process.stop(pid_file, timeout=5) is True
    assert process.read_pid(pid_file) is None
    assert not pid_file.exists()
    assert process.stop(pid_file) is False


def test_process_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "p.pid"
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    process.start([sys.executable, "-c", code], pid_file, tmp_path / "p.log")
    for _ in range(50):
        if "ready" in (tmp_path / "p.log").read_text():
            break
        time.sleep(0.1)
    assert process.stop(pid_file, timeout=1) is True
    assert process.read_pid(pid_file) is None


def test_recycled_pid_is_never_ours(tmp_path: Path) -> None:
    # Our own pid with a wrong start time: a pid file left by a dead process whose pid was reused.
    pid_file = tmp_path / "stale.pid"
    pid_file.write_text(f"{os.getpid()} 1\n")
    assert process.read_pid(pid_file) is None
    assert process.stop(pid_file) is False  # and nothing was signalled: we are still here
