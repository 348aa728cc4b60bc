"""Live progress of a run: a per-node table on a terminal, timestamped plain lines otherwise.

Invariant: the text shown is what the engine reports (already secret-free); the renderer adds
only node name, phase and elapsed time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from rich.console import Console
from rich.live import Live
from rich.table import Table


class PlainProgress:
    """One line per event: `2026-11-29T10:00:00Z lab-r1-n1 configure: site.yml ok`."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()

    def node(self, node: str, phase: str, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        text = f"{stamp} {node:<14} {phase:<16} {message}".rstrip()
        with self._lock:
            self.console.print(text, markup=False, highlight=False)

    def line(self, message: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            self.console.print(f"{stamp} {message}", markup=False, highlight=False)

    def close(self) -> None:
        pass


class LiveProgress(PlainProgress):
    """A table (node, phase, elapsed, last event) redrawn in place; region-level lines print above it."""

    def __init__(self, console: Console, nodes: list[str]) -> None:
        super().__init__(console)
        self.rows: dict[str, list[str]] = {n: ["pending", "", ""] for n in nodes}
        self.started: dict[str, float] = {}
        self.live = Live(self._table(), console=console, refresh_per_second=4, transient=False)
        self.live.start()

    def _table(self) -> Table:
        table = Table(box=None, pad_edge=False)
        for col in ("node", "phase", "elapsed", "last event"):
            table.add_column(col)
        now = time.monotonic()
        for node, (phase, _, last) in self.rows.items():
            since = self.started.get(node)
            elapsed = f"{int(now - since)}s" if since is not None and phase not in ("done", "quarantined") else ""
            table.add_row(node, phase, elapsed, last[:80])
        return table

    def node(self, node: str, phase: str, message: str) -> None:
        with self._lock:
            row = self.rows.setdefault(node, ["pending", "", ""])
            if phase:
                row[0] = phase
            if message:
                row[2] = message
            self.started.setdefault(node, time.monotonic())
            self.live.update(self._table())

    def line(self, message: str) -> None:
        with self._lock:
            self.live.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        self.live.update(self._table())
        self.live.stop()
