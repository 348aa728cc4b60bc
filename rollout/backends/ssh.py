"""SSH host-key probes: the observable that proves a node was re-installed.

A fresh install generates new SSH host keys (the lab image does it on first boot, as Debian's
installer does), so "the host key changed" is the fence that keeps rollout from re-installing a
node twice after a crash (see rollout/executor/engine.py).

Invariants: read-only (`ssh-keyscan` only, never logs in); `None` means "no answer", never "changed".
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections.abc import Callable
from threading import Event


def host_key_fingerprint(address: str, *, port: int = 22, timeout: int = 5) -> str | None:
    """`SHA256:...` of the node's ed25519 host key, or None when nothing answers."""
    try:
        proc = subprocess.run(
            ["ssh-keyscan", "-T", str(timeout), "-t", "ed25519", "-p", str(port), address],
            capture_output=True, text=True, timeout=timeout + 5, check=False,
        )
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return None
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "ssh-ed25519":
            digest = hashlib.sha256(base64.b64decode(parts[2])).digest()
            return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    return None


def wait_for_host_key_change(
    address: str,
    old: str,
    *,
    timeout: float,
    poll: float = 2.0,
    stop: Event | None = None,
    probe: Callable[[str], str | None] = host_key_fingerprint,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str | None:
    """Poll until the host answers with a key different from `old`; the new key, or None on timeout."""
    deadline = clock() + timeout
    while True:
        current = probe(address)
        if current is not None and current != old:
            return current
        if clock() >= deadline or (stop is not None and stop.is_set()):
            return None
        sleep(poll)
