"""Journal: append-only transitions, intent/result pairing, queries, redaction, persistence."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from rollout.journal import Journal, Kind, journal_path, new_run_id, redact, secret_strings


class FakeClock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


@pytest.fixture
def journal(tmp_path):
    j = Journal.open("lab", tmp_path / "state", secrets=["hunter2", "tok-ABC"], clock=FakeClock())
    yield j
    j.close()


def test_path_layout_and_wal(tmp_path, journal):
    assert journal.path == tmp_path / "state" / "lab" / "journal.sqlite"
    assert journal_path(".rollout", "r1").as_posix() == ".rollout/r1/journal.sqlite"
    mode = sqlite3.connect(journal.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "."])
def test_region_name_must_be_a_path_component(tmp_path, bad):
    with pytest.raises(ValueError):
        journal_path(tmp_path, bad)


def test_intent_then_result_closes_it(journal):
    run = journal.start_run("rollout apply --region lab", user="ops", host="h1", pid=42)
    i = journal.intent(run.run_id, "lab-1", "reprovision", "boot override PXE + power cycle")
    assert [t.seq for t in journal.open_intents()] == [i.seq]
    r = journal.result(i, "ok", "power cycled")
    assert r.kind is Kind.RESULT and r.intent_seq == i.seq and r.node == "lab-1" and r.step == "reprovision"
    assert journal.open_intents() == []
    assert journal.last_transition("lab-1") == r


def test_open_intents_are_the_interrupted_side_effects(journal):
    run = journal.start_run("apply").run_id
    done = journal.intent(run, "n1", "fence")
    journal.result(done, "ok")
    dangling = journal.intent(run, "n2", "reprovision")
    journal.note(run, "n3", "observe", "seen")
    assert [t.seq for t in journal.open_intents()] == [dangling.seq]
    assert journal.open_intents(node="n1") == []
    assert [t.node for t in journal.open_intents(node="n2")] == ["n2"]


def test_result_must_point_at_an_intent(journal):
    run = journal.start_run("apply").run_id
    note = journal.note(run, "n1", "observe", "x")
    with pytest.raises(KeyError):
        journal.result(note, "ok")
    with pytest.raises(KeyError):
        journal.result(9999, "ok")


def test_transitions_are_append_only(journal):
    run = journal.start_run("apply").run_id
    journal.note(run, "n1", "observe", "x")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal._db.execute("UPDATE transitions SET status = 'ok'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        journal._db.execute("DELETE FROM transitions")
    assert len(journal.transitions()) == 1


def test_last_transition_per_node(journal):
    run = journal.start_run("apply").run_id
    journal.note(run, "n1", "a", "s1")
    last_n2 = journal.note(run, "n2", "b", "s2")
    last_n1 = journal.note(run, "n1", "c", "s3")
    assert journal.last_transitions() == {"n1": last_n1, "n2": last_n2}
    assert journal.last_transition("nope") is None


def test_step_context_records_ok_and_failed(journal):
    run = journal.start_run("apply").run_id
    with journal.step(run, "n1", "configure", "site.yml"):
        pass
    with pytest.raises(RuntimeError), journal.step(run, "n1", "verify", "verify.yml"):
        raise RuntimeError("play failed on n1")
    rows = journal.transitions(node="n1")
    assert [(t.step, t.kind.value, t.status) for t in rows] == [
        ("configure", "intent", "started"),
        ("configure", "result", "ok"),
        ("verify", "intent", "started"),
        ("verify", "result", "failed"),
    ]
    assert "play failed on n1" in rows[-1].summary
    assert journal.count_results("n1", "configure") == 1
    assert journal.count_results("n1", "verify") == 0


def test_secrets_never_stored(journal):
    run = journal.start_run("apply --token tok-ABC").run_id
    with pytest.raises(ValueError), journal.step(run, "n1", "bmc", "login admin:hunter2"):
        raise ValueError("401 for password hunter2")
    journal.end_run(run, "failed", "bad password hunter2")
    raw = journal.path.read_bytes() + journal.path.with_name("journal.sqlite-wal").read_bytes()
    assert b"hunter2" not in raw and b"tok-ABC" not in raw
    assert "***" in journal.transitions()[0].summary
    assert journal.run(run).reason == "bad password ***"


def test_redact_helper():
    assert redact("a=s3cret b=s3cret-long", {"s3cret", "s3cret-long"}) == "a=*** b=***"
    assert redact("nothing here", {""}) == "nothing here"
    assert secret_strings({"n1": {"username": "admin", "password": "pw"}, "x": [1, None, True]}) == {
        "admin",
        "pw",
        "1",
    }


def test_runs_history_newest_first(journal):
    a = journal.start_run("apply", user="u", host="h", pid=1)
    b = journal.start_run("reimage lab-1", user="u", host="h", pid=2)
    journal.end_run(a.run_id, "ok")
    hist = journal.runs()
    assert [r.run_id for r in hist] == [b.run_id, a.run_id]
    assert hist[1].finished and hist[1].outcome == "ok" and not hist[0].finished
    assert len(journal.runs(limit=1)) == 1
    with pytest.raises(KeyError):
        journal.end_run(a.run_id, "ok")  # already ended


def test_survives_reopen(tmp_path):
    j = Journal.open("lab", tmp_path)
    run = j.start_run("apply").run_id
    i = j.intent(run, "n1", "reprovision")
    j.close()  # as if the process died right after the intent
    j2 = Journal.open("lab", tmp_path)
    assert [t.seq for t in j2.open_intents()] == [i.seq]
    j2.close()


def test_run_ids_sort_by_time():
    a = new_run_id(datetime(2026, 1, 1, tzinfo=UTC))
    b = new_run_id(datetime(2026, 1, 2, tzinfo=UTC))
    assert a < b and a.startswith("20260101T000000Z-")


def test_interrupt_leaves_the_intent_open(journal):
    run = journal.start_run("apply").run_id
    with pytest.raises(KeyboardInterrupt), journal.step(run, "n1", "reprovision", "power cycle"):
        raise KeyboardInterrupt
    assert [(t.node, t.step) for t in journal.open_intents()] == [("n1", "reprovision")]


def test_concurrent_writers_from_threads(journal):
    import threading

    run = journal.start_run("apply").run_id

    def work(node: str) -> None:
        for i in range(25):
            with journal.step(run, node, f"s{i}"):
                pass

    threads = [threading.Thread(target=work, args=(f"n{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = journal.transitions()
    assert len(rows) == 200 and len({r.seq for r in rows}) == 200
    assert journal.open_intents() == []
    assert {n: t.step for n, t in journal.last_transitions().items()} == {f"n{k}": "s24" for k in range(4)}
