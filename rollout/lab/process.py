"""Background processes tracked by pid files (the BMC emulator, the provisioner).

Invariants:
- a pid file holds `<pid> <starttime>` where starttime is field 22 of /proc/<pid>/stat; a pid is
  only considered ours (alive, killable) when both match, so a recycled pid is never signalled;
- processes are stopped by that pid only (their own session, which they lead): never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def _starttime(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after the last ')' are fixed.
    return stat.rsplit(")", 1)[1].split()[19]


def read_pid(pid_file: Path) -> int | None:
    """The recorded pid if that very process is still alive, else None."""
    try:
        pid_s, start = pid_file.read_text().split()
    except (OSError, ValueError):
        return None
    pid = int(pid_s)
    st = _starttime(pid)
    if st is None or st != start:
        return None
    try:
        if Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] == "Z":
            return None
    except (OSError, IndexError):
        return None
    return pid


def start(cmd: list[str], pid_file: Path, log_file: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start `cmd` detached in its own session, write the pid file, return the pid."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=cwd)
    start_time = None
    for _ in range(50):
        start_time = _starttime(proc.pid)
        if start_time:
            break
        time.sleep(0.01)
    pid_file.write_text(f"{proc.pid} {start_time}\n")
    return proc.pid


def stop(pid_file: Path, timeout: float = 10.0) -> bool:
    """SIGTERM the recorded process (then SIGKILL after `timeout`); remove the pid file.

    Returns True when a live process was stopped.
    """
    pid = read_pid(pid_file)
    stopped = False
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and read_pid(pid_file) is not None:
            _reap(pid)
            time.sleep(0.1)
        if read_pid(pid_file) is not None:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            _reap(pid)
        stopped = True
    pid_file.unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    # When the caller is the parent (tests start and stop in one process), collect the zombie.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
