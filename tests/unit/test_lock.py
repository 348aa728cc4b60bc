"""Region lock: one holder, holder named on refusal, stale takeover only on request, exact-id unlock."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rollout.errors import SafetyRefused
from rollout.exitcodes import ExitCode
from rollout.journal import Journal
from rollout.lock import LockHeld, LockIdMismatch, LockStale, RegionLock, pid_alive, process_start_time


@pytest.fixture
def journal(tmp_path):
    j = Journal.open("lab", tmp_path)
    yield j
    j.close()


def make_lock(journal, host="h1", alive=True):
    return RegionLock(journal, hostname=lambda: host, alive=lambda pid, start: alive)


def test_second_acquire_is_refused_naming_the_holder(journal):
    first = make_lock(journal).acquire("run-1", user="alice", pid=100)
    with pytest.raises(LockHeld) as exc:
        make_lock(journal).acquire("run-2", user="bob", pid=200)
    err = exc.value
    assert isinstance(err, SafetyRefused) and err.exit_code == ExitCode.REFUSED
    for part in ("alice@h1", "pid 100", "run-1", first.lock_id, first.started):
        assert part in err.message
    assert first.lock_id in err.hint


def test_release_then_acquire(journal):
    lock = make_lock(journal)
    h = lock.acquire("run-1")
    lock.release(h.lock_id)
    assert not lock.status().held
    assert lock.acquire("run-2").run_id == "run-2"


def test_stale_lock_is_reported_then_taken_over_on_request(journal):
    dead = make_lock(journal, alive=False)
    old = make_lock(journal).acquire("run-1", pid=100)
    st = dead.status()
    assert st.held and st.stale and st.holder == old
    with pytest.raises(LockStale) as exc:
        dead.acquire("run-2")
    assert "run-1" in exc.value.message and "stale" in exc.value.message
    new = dead.acquire("run-2", take_over_stale=True)
    assert new.run_id == "run-2" and new.lock_id != old.lock_id
    notes = journal.transitions(node="(region)")
    assert notes[-1].status == "taken-over" and old.lock_id in notes[-1].summary


def test_dead_pid_on_another_host_is_not_stale(journal):
    make_lock(journal, host="other-host").acquire("run-1")
    here = make_lock(journal, host="h1", alive=False)
    assert not here.status().stale
    with pytest.raises(LockHeld):
        here.acquire("run-2", take_over_stale=True)


def test_force_unlock_requires_exact_id(journal):
    lock = make_lock(journal)
    h = lock.acquire("run-1")
    with pytest.raises(LockIdMismatch):
        lock.force_unlock(h.lock_id[:-1])
    with pytest.raises(LockIdMismatch):
        lock.force_unlock("")
    assert lock.status().holder == h
    removed = lock.force_unlock(h.lock_id, reason="operator override")
    assert removed == h and not lock.status().held
    assert journal.transitions(node="(region)")[-1].status == "force-unlocked"
    with pytest.raises(LockIdMismatch):
        lock.release(h.lock_id)  # nothing to release any more


def test_held_context_releases(journal):
    lock = make_lock(journal)
    with lock.held("run-1") as h:
        assert lock.status().holder == h
    assert not lock.status().held


def test_lock_is_shared_between_connections(tmp_path):
    a, b = Journal.open("lab", tmp_path), Journal.open("lab", tmp_path)
    make_lock(a).acquire("run-1")
    with pytest.raises(LockHeld):
        make_lock(b).acquire("run-2")
    a.close()
    b.close()


def test_real_pid_liveness():
    me = os.getpid()
    assert pid_alive(me, process_start_time(me))
    assert not pid_alive(me, "0")  # same pid, different start time = reused pid
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert not pid_alive(p.pid, None)


def test_default_liveness_detects_dead_process(journal):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    lock = RegionLock(journal)
    lock.acquire("run-1", pid=p.pid)
    p.wait()
    assert lock.status().stale
    assert lock.acquire("run-2", take_over_stale=True).pid == os.getpid()


def test_held_does_not_remove_someone_elses_lock(journal):
    lock = make_lock(journal)
    with lock.held("run-1") as mine:
        lock.force_unlock(mine.lock_id)
        theirs = lock.acquire("run-2")
    assert lock.status().holder == theirs
