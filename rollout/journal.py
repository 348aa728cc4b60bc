"""The region journal: an append-only record of every per-node transition, in SQLite (WAL).

One database per region at `<state_dir>/<region>/journal.sqlite` (state dir default `.rollout/`).

Invariants:
- `transitions` is append-only: SQLite triggers abort any UPDATE or DELETE, so history cannot be
  rewritten by a bug (or by a hurried on-call engineer with the sqlite3 shell).
- A side effect is bracketed: an `intent` row is committed *before* it starts and a `result` row
  (pointing at the intent's `seq`) *after* it completes. An intent without a result is exactly an
  interrupted side effect; resume must re-observe before deciding what it did (`open_intents()`).
- No secret value is ever stored: every free-text field goes through `redact()` with the secret
  values the journal was opened with. Callers still pass summaries, not command lines.
- Timestamps are UTC ISO-8601 strings from an injectable clock, so tests need no sleeping.
- Every write is its own committed transaction (autocommit + WAL): a SIGKILL loses at most the
  write in flight, never a committed one.
"""

from __future__ import annotations

import getpass
import os
import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = Path(".rollout")
SCHEMA_VERSION = 1
REDACTED = "***"

Clock = Callable[[], datetime]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id   TEXT PRIMARY KEY,
    user     TEXT NOT NULL,
    host     TEXT NOT NULL,
    pid      INTEGER NOT NULL,
    command  TEXT NOT NULL,
    started  TEXT NOT NULL,
    ended    TEXT,
    outcome  TEXT,
    reason   TEXT
);
CREATE TABLE IF NOT EXISTS transitions (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL,
    node       TEXT NOT NULL,
    step       TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('intent', 'result', 'note')),
    status     TEXT NOT NULL,
    ts         TEXT NOT NULL,
    summary    TEXT NOT NULL DEFAULT '',
    intent_seq INTEGER REFERENCES transitions(seq)
);
CREATE INDEX IF NOT EXISTS transitions_node ON transitions(node, seq);
CREATE INDEX IF NOT EXISTS transitions_intent ON transitions(intent_seq);
CREATE TRIGGER IF NOT EXISTS transitions_no_update BEFORE UPDATE ON transitions
BEGIN SELECT RAISE(ABORT, 'journal transitions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS transitions_no_delete BEFORE DELETE ON transitions
BEGIN SELECT RAISE(ABORT, 'journal transitions are append-only'); END;
CREATE TABLE IF NOT EXISTS region_lock (
    region    TEXT PRIMARY KEY,
    lock_id   TEXT NOT NULL,
    user      TEXT NOT NULL,
    host      TEXT NOT NULL,
    pid       INTEGER NOT NULL,
    pid_start TEXT,
    run_id    TEXT NOT NULL,
    started   TEXT NOT NULL
);
"""


class Kind(StrEnum):
    INTENT = "intent"
    RESULT = "result"
    NOTE = "note"


@dataclass(frozen=True)
class Transition:
    seq: int
    run_id: str
    node: str
    step: str
    kind: Kind
    status: str
    ts: str
    summary: str
    intent_seq: int | None = None


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    user: str
    host: str
    pid: int
    command: str
    started: str
    ended: str | None = None
    outcome: str | None = None
    reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.ended is not None


def utc_now() -> datetime:
    return datetime.now(UTC)


def journal_path(state_dir: Path | str, region: str) -> Path:
    """`<state_dir>/<region>/journal.sqlite`; the region name must be a plain path component."""
    if not region or "/" in region or region in (".", ".."):
        raise ValueError(f"invalid region name for a state path: {region!r}")
    return Path(state_dir) / region / "journal.sqlite"


def secret_strings(value: Any) -> set[str]:
    """Every string leaf of a secret value (a vault dict of credentials, a token, a list of keys)."""
    out: set[str] = set()
    if value is None or isinstance(value, bool):
        return out
    if isinstance(value, Mapping):
        for v in value.values():
            out |= secret_strings(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            out |= secret_strings(v)
    else:
        text = str(value)
        if text:
            out.add(text)
    return out


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of any secret value in `text` with `***`.

    Longest first, so a secret that contains another secret is not left half visible.
    """
    for s in sorted({s for s in secrets if s}, key=len, reverse=True):
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def _row_to_transition(row: sqlite3.Row) -> Transition:
    return Transition(
        seq=row["seq"],
        run_id=row["run_id"],
        node=row["node"],
        step=row["step"],
        kind=Kind(row["kind"]),
        status=row["status"],
        ts=row["ts"],
        summary=row["summary"],
        intent_seq=row["intent_seq"],
    )


def _row_to_run(row: sqlite3.Row) -> RunRecord:
    return RunRecord(**{k: row[k] for k in row.keys()})  # noqa: SIM118 - sqlite3.Row is not a Mapping


class Journal:
    """One region's journal. Thread-safe (one connection behind a lock; the executor uses threads)."""

    def __init__(
        self,
        path: Path | str,
        *,
        region: str,
        secrets: Iterable[str] = (),
        clock: Clock = utc_now,
    ) -> None:
        self.path = Path(path)
        self.region = region
        self._secrets = frozenset(s for s in secrets if s)
        self._clock = clock
        self._mutex = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: autocommit; explicit BEGIN IMMEDIATE where we need atomic read-modify-write.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._mutex:
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @classmethod
    def open(
        cls,
        region: str,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        *,
        secrets: Iterable[str] = (),
        clock: Clock = utc_now,
    ) -> Journal:
        return cls(journal_path(state_dir, region), region=region, secrets=secrets, clock=clock)

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------------
    def now(self) -> str:
        return self._clock().astimezone(UTC).isoformat(timespec="milliseconds")

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def add_secrets(self, values: Iterable[str]) -> None:
        """Learn more secret values (e.g. after the vault is opened lazily)."""
        self._secrets = self._secrets | {v for v in values if v}

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: a write lock held across a read-modify-write (used by the lock)."""
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query_one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        """A read for co-located tables (the region lock); writes go through `transaction()`."""
        with self._mutex:
            row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
        return row

    # -- runs ------------------------------------------------------------------------------------------
    def start_run(
        self,
        command: str,
        *,
        run_id: str | None = None,
        user: str | None = None,
        host: str | None = None,
        pid: int | None = None,
    ) -> RunRecord:
        record = RunRecord(
            run_id=run_id or new_run_id(self._clock()),
            user=user or getpass.getuser(),
            host=host or socket.gethostname(),
            pid=pid if pid is not None else os.getpid(),
            command=self.redact(command),
            started=self.now(),
        )
        with self._mutex:
            self._db.execute(
                "INSERT INTO runs (run_id, user, host, pid, command, started) VALUES (?, ?, ?, ?, ?, ?)",
                (record.run_id, record.user, record.host, record.pid, record.command, record.started),
            )
        return record

    def end_run(self, run_id: str, outcome: str, reason: str = "") -> RunRecord:
        with self._mutex:
            cur = self._db.execute(
                "UPDATE runs SET ended = ?, outcome = ?, reason = ? WHERE run_id = ? AND ended IS NULL",
                (self.now(), outcome, self.redact(reason), run_id),
            )
            if cur.rowcount != 1:
                raise KeyError(f"no unfinished run {run_id!r} in the journal of region {self.region}")
        return self.run(run_id)

    def run(self, run_id: str) -> RunRecord:
        with self._mutex:
            row = self._db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        return _row_to_run(row)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Runs history, newest first."""
        sql = "SELECT * FROM runs ORDER BY started DESC, rowid DESC"
        params: tuple[Any, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        with self._mutex:
            return [_row_to_run(r) for r in self._db.execute(sql, params)]

    # -- transitions -----------------------------------------------------------------------------------
    def _append(
        self, run_id: str, node: str, step: str, kind: Kind, status: str, summary: str, intent_seq: int | None
    ) -> Transition:
        ts = self.now()
        summary = self.redact(summary)
        with self._mutex:
            cur = self._db.execute(
                "INSERT INTO transitions (run_id, node, step, kind, status, ts, summary, intent_seq)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, node, step, kind.value, status, ts, summary, intent_seq),
            )
            seq = cur.lastrowid
        assert seq is not None
        return Transition(seq, run_id, node, step, kind, status, ts, summary, intent_seq)

    def intent(self, run_id: str, node: str, step: str, summary: str = "") -> Transition:
        """Record that a side effect is about to start. Commit happens before this returns."""
        return self._append(run_id, node, step, Kind.INTENT, "started", summary, None)

    def result(
        self, intent: Transition | int, status: str, summary: str = "", *, run_id: str | None = None
    ) -> Transition:
        """Close an intent with its outcome (`ok`, `failed`, `skipped`, `rescued`, ...)."""
        seq = intent.seq if isinstance(intent, Transition) else intent
        with self._mutex:
            row = self._db.execute("SELECT * FROM transitions WHERE seq = ?", (seq,)).fetchone()
        if row is None or row["kind"] != Kind.INTENT.value:
            raise KeyError(f"journal seq {seq} is not an intent")
        opened = _row_to_transition(row)
        return self._append(run_id or opened.run_id, opened.node, opened.step, Kind.RESULT, status, summary, seq)

    def note(self, run_id: str, node: str, step: str, status: str, summary: str = "") -> Transition:
        """A fact with no side effect of its own (observation, quarantine, lock takeover)."""
        return self._append(run_id, node, step, Kind.NOTE, status, summary, None)

    @contextmanager
    def step(self, run_id: str, node: str, step: str, summary: str = "") -> Iterator[Transition]:
        """Bracket a side effect: intent before, result `ok` after, `failed` (with the error) on raise.

        A SIGKILL inside the block leaves the intent open, which is the point. So does Ctrl-C
        (KeyboardInterrupt, SystemExit): the side effect may or may not have happened, and only
        re-observation on resume can tell, so no result is claimed for it.
        """
        opened = self.intent(run_id, node, step, summary)
        try:
            yield opened
        except Exception as exc:
            self.result(opened, "failed", f"{type(exc).__name__}: {exc}")
            raise
        self.result(opened, "ok", summary)

    def transitions(self, *, node: str | None = None, run_id: str | None = None) -> list[Transition]:
        clauses, params = [], []
        if node is not None:
            clauses.append("node = ?")
            params.append(node)
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._mutex:
            rows = self._db.execute(f"SELECT * FROM transitions{where} ORDER BY seq", params).fetchall()
        return [_row_to_transition(r) for r in rows]

    def last_transition(self, node: str) -> Transition | None:
        with self._mutex:
            row = self._db.execute(
                "SELECT * FROM transitions WHERE node = ? ORDER BY seq DESC LIMIT 1", (node,)
            ).fetchone()
        return _row_to_transition(row) if row else None

    def last_transitions(self) -> dict[str, Transition]:
        """The newest transition of every node that has one."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT t.* FROM transitions t JOIN "
                "(SELECT node, MAX(seq) AS seq FROM transitions GROUP BY node) m ON t.seq = m.seq "
                "ORDER BY t.node"
            ).fetchall()
        return {r["node"]: _row_to_transition(r) for r in rows}

    def open_intents(self, node: str | None = None) -> list[Transition]:
        """Intents with no result: side effects that were started and may or may not have happened."""
        sql = (
            "SELECT i.* FROM transitions i WHERE i.kind = 'intent' AND NOT EXISTS "
            "(SELECT 1 FROM transitions r WHERE r.kind = 'result' AND r.intent_seq = i.seq)"
        )
        params: tuple[Any, ...] = ()
        if node is not None:
            sql += " AND i.node = ?"
            params = (node,)
        with self._mutex:
            rows = self._db.execute(sql + " ORDER BY i.seq", params).fetchall()
        return [_row_to_transition(r) for r in rows]

    def count_results(self, node: str, step: str, status: str = "ok") -> int:
        """How often a step completed with `status` for a node (e.g. re-installs issued)."""
        with self._mutex:
            row = self._db.execute(
                "SELECT COUNT(*) FROM transitions WHERE node = ? AND step = ? AND kind = 'result' AND status = ?",
                (node, step, status),
            ).fetchone()
        return int(row[0])


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, unique: `20261129T181000Z-3f2a9c1b`."""
    stamp = (now or utc_now()).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:8]}"


__all__ = [
    "DEFAULT_STATE_DIR",
    "Journal",
    "Kind",
    "RunRecord",
    "Transition",
    "journal_path",
    "new_run_id",
    "redact",
    "secret_strings",
    "utc_now",
]
