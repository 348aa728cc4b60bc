"""The region lock: at most one rollout acts on a region at a time, and it names its holder.

Stored in the region's journal DB (table `region_lock`, one row per region), so lock and history
live and die together and need no extra service. With a management cluster the executor may use
a `coordination.k8s.io` Lease instead; this is the local default.

Invariants:
- Acquire is atomic: read and insert happen inside one `BEGIN IMMEDIATE` transaction, so two
  processes racing for the lock cannot both win (SQLite serialises writers).
- A second acquire raises `LockHeld` (a SafetyRefused, exit 3) naming user, host, pid, run id,
  start time and lock id.
- A lock is *stale* only when its holder ran on this same host and its pid is gone (or was reused:
  we remember the process start time from /proc). A lock from another host is never judged stale
  from here; only `force_unlock` with the exact lock id removes it.
- A stale lock is reported (`LockStale`, with the holder) and taken over only when the caller asks
  (`take_over_stale=True`); the takeover is recorded as a journal note.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rollout.errors import ConfigError, SafetyRefused
from rollout.journal import Journal

LOG = logging.getLogger(__name__)

# Journal notes about the lock use this pseudo node name.
LOCK_NODE = "(region)"


@dataclass(frozen=True)
class LockHolder:
    region: str
    lock_id: str
    user: str
    host: str
    pid: int
    run_id: str
    started: str
    pid_start: str | None = None

    def describe(self) -> str:
        return (
            f"run {self.run_id} by {self.user}@{self.host} pid {self.pid} since {self.started} (lock id {self.lock_id})"
        )


class LockHeld(SafetyRefused):
    """Another live (or not provably dead) process holds the region lock."""

    def __init__(self, holder: LockHolder) -> None:
        self.holder = holder
        super().__init__(
            f"Region `{holder.region}` is locked by {holder.describe()}",
            hint=(
                f"wait for that run to finish (`rollout status --region {holder.region}`); "
                f"if it is certainly gone, `rollout unlock --region {holder.region} --force {holder.lock_id}`"
            ),
        )


class LockStale(SafetyRefused):
    """The holder ran on this host and its process is gone: taking over is possible but explicit."""

    def __init__(self, holder: LockHolder) -> None:
        self.holder = holder
        super().__init__(
            f"Region `{holder.region}` has a stale lock: {holder.describe()}; that process no longer runs",
            hint="re-run with --take-over to take the stale lock over (the previous run's steps are resumed)",
        )


class LockIdMismatch(ConfigError):
    """force/release named a lock id that is not the current one."""


def process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); None when unknown."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # NOTE: the command name (field 2) may contain spaces and parentheses; split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, start: str | None) -> bool:
    """True when `pid` runs and (if we know it) started at `start`: guards against pid reuse."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start is None:
        return True
    now_start = process_start_time(pid)
    return now_start is None or now_start == start


@dataclass(frozen=True)
class LockStatus:
    holder: LockHolder | None
    stale: bool

    @property
    def held(self) -> bool:
        return self.holder is not None


class RegionLock:
    def __init__(
        self,
        journal: Journal,
        *,
        hostname: Callable[[], str] = socket.gethostname,
        alive: Callable[[int, str | None], bool] = pid_alive,
    ) -> None:
        self.journal = journal
        self.region = journal.region
        self._hostname = hostname
        self._alive = alive

    def _read(self, db: sqlite3.Connection | None = None) -> LockHolder | None:
        sql, params = "SELECT * FROM region_lock WHERE region = ?", (self.region,)
        row = db.execute(sql, params).fetchone() if db is not None else self.journal.query_one(sql, params)
        if row is None:
            return None
        return LockHolder(**{k: row[k] for k in row.keys()})  # noqa: SIM118

    def _is_stale(self, holder: LockHolder) -> bool:
        return holder.host == self._hostname() and not self._alive(holder.pid, holder.pid_start)

    def status(self) -> LockStatus:
        holder = self._read()
        return LockStatus(holder=holder, stale=holder is not None and self._is_stale(holder))

    def acquire(
        self,
        run_id: str,
        *,
        user: str | None = None,
        pid: int | None = None,
        take_over_stale: bool = False,
    ) -> LockHolder:
        pid = os.getpid() if pid is None else pid
        mine = LockHolder(
            region=self.region,
            lock_id=uuid.uuid4().hex[:12],
            user=user or getpass.getuser(),
            host=self._hostname(),
            pid=pid,
            run_id=run_id,
            started=self.journal.now(),
            pid_start=process_start_time(pid),
        )
        taken_from: LockHolder | None = None
        with self.journal.transaction() as db:
            current = self._read(db)
            if current is not None:
                if not self._is_stale(current):
                    raise LockHeld(current)
                if not take_over_stale:
                    raise LockStale(current)
                taken_from = current
                db.execute("DELETE FROM region_lock WHERE region = ?", (self.region,))
            db.execute(
                "INSERT INTO region_lock (region, lock_id, user, host, pid, pid_start, run_id, started)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    mine.region,
                    mine.lock_id,
                    mine.user,
                    mine.host,
                    mine.pid,
                    mine.pid_start,
                    mine.run_id,
                    mine.started,
                ),
            )
        if taken_from is not None:
            self.journal.note(run_id, LOCK_NODE, "lock", "taken-over", f"took over stale lock: {taken_from.describe()}")
        return mine

    def release(self, lock_id: str) -> None:
        """Normal release by the holder. Releasing a lock you do not hold is an error, not a no-op."""
        self._delete(lock_id)

    def force_unlock(self, lock_id: str, *, run_id: str = "-", reason: str = "forced") -> LockHolder:
        """Operator override: only with the exact lock id shown by `rollout status` (no wildcard)."""
        removed = self._delete(lock_id)
        self.journal.note(run_id, LOCK_NODE, "lock", "force-unlocked", f"{reason}: {removed.describe()}")
        return removed

    def _delete(self, lock_id: str) -> LockHolder:
        with self.journal.transaction() as db:
            current = self._read(db)
            if current is None:
                raise LockIdMismatch(
                    f"Region `{self.region}` is not locked (asked to remove lock id {lock_id})",
                    hint=f"nothing to do; `rollout status --region {self.region}` shows the lock",
                )
            if current.lock_id != lock_id:
                raise LockIdMismatch(
                    f"Region `{self.region}` lock id is {current.lock_id}, not {lock_id}: {current.describe()}",
                    hint="pass the exact lock id shown by `rollout status`",
                )
            db.execute("DELETE FROM region_lock WHERE region = ? AND lock_id = ?", (self.region, lock_id))
        return current

    @contextmanager
    def held(self, run_id: str, *, take_over_stale: bool = False) -> Iterator[LockHolder]:
        holder = self.acquire(run_id, take_over_stale=take_over_stale)
        try:
            yield holder
        finally:
            try:
                self.release(holder.lock_id)
            except LockIdMismatch:
                # Someone force-unlocked (and maybe re-locked) meanwhile: never remove their lock,
                # and never hide the exception that may be propagating.
                LOG.warning(
                    "Region lock was removed by someone else: region=%s lock_id=%s", self.region, holder.lock_id
                )


__all__ = [
    "LockHeld",
    "LockHolder",
    "LockIdMismatch",
    "LockStale",
    "LockStatus",
    "RegionLock",
    "pid_alive",
    "process_start_time",
]
