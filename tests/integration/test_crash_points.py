"""Crash points at every phase boundary: a real engine process SIGKILLed, then resumed by a new process.

Stand-in: the side effects are a file-backed fake world (tests/support/engine_driver.py) so that all
12 boundaries of a re-image run in seconds; the journal, resume logic, scheduler and the SIGKILL are
real. The lab-level random-kill test (tests/e2e, `make crash-test`) does the same against real nodes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["precheck", "storage-fence", "reprovision", "configure", "verify", "storage-unfence"]
BOUNDARIES = [f"t-r2-n1:{s}:{w}" for s in STEPS for w in ("before", "after")]


def drive(state: Path, crash: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("ROLLOUT_CRASH_AT", None)
    if crash:
        env["ROLLOUT_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "tests.support.engine_driver", str(state)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.integration
@pytest.mark.parametrize("crash", BOUNDARIES)
def test_kill_at_boundary_then_resume(tmp_path: Path, crash: str) -> None:
    first = drive(tmp_path, crash)
    assert first.returncode == -signal.SIGKILL, first.stderr
    resumed = drive(tmp_path, None)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    world = json.loads((tmp_path / "world.json").read_text())
    # Every node re-installed exactly once, whatever the crash point; no noout left behind.
    assert world["installs"] == {f"t-r{r}-n{i}": 1 for r in (1, 2, 3) for i in (1, 2)}, world
    assert world["noout"] == []
    # And a third run finds nothing unfinished.
    again = drive(tmp_path, None)
    assert json.loads(again.stdout.strip().splitlines()[-1]) == {"done": [], "quarantined": []}
