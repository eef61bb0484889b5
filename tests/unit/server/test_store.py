"""The SQLite store: persistence across connections and atomic job updates."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bytenite_nb.server.storage.store import ResultRow, Store


def test_everything_survives_reopening(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    store = Store(db)
    store.put_job({"id": "j", "state": "JOB_STATE_NEW", "createdAt": "t", "params": {"a": 1}})
    store.upsert_task("j", 0, state="TASK_STATE_COMPLETE", attempts=1, exit_code=0)
    store.add_log("j", "TASKRUNNER", 0, "INFO", "hello", "main", "t")
    seq = store.add_event("job.state", "j", {"state": "JOB_STATE_NEW"})
    store.add_results([ResultRow("tok", "j", "out.txt", "/x", 3, 1.0)])
    store.close()
    again = Store(db)
    assert again.get_job("j") == {"id": "j", "state": "JOB_STATE_NEW", "createdAt": "t",
                                  "params": {"a": 1}}
    assert again.list_tasks("j")[0].exit_code == 0
    assert again.logs("j")[0].message == "hello"
    assert [e.seq for e in again.events_after(0)] == [seq] and again.last_seq() == seq
    assert again.result_by_token("tok") is not None
    assert (tmp_path / "db.sqlite").exists()
    again.delete_job("j")
    assert again.get_job("j") is None and again.logs("j") == [] and again.results("j") == []
    assert again.events_after(0)  # the event history stays for resuming streams
    again.close()


def test_update_job_is_atomic_under_concurrency(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.put_job({"id": "j", "state": "JOB_STATE_NEW", "createdAt": "t", "n": 0})

    def bump() -> None:
        for _ in range(50):
            store.update_job("j", lambda job: {**job, "n": job["n"] + 1})

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get_job("j")["n"] == 200  # type: ignore[index]
    store.close()


def test_a_failing_change_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.put_job({"id": "j", "state": "JOB_STATE_NEW", "createdAt": "t"})

    def boom(job: dict) -> dict:
        raise ValueError("no")

    with pytest.raises(ValueError):
        store.update_job("j", boom)
    assert store.get_job("j") == {"id": "j", "state": "JOB_STATE_NEW", "createdAt": "t"}
    assert store.update_job("missing", lambda job: job) is None
    store.close()


def test_running_task_counts(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    store.upsert_task("j", 0, state="TASK_STATE_RUNNING")
    store.upsert_task("j", 1, state="TASK_STATE_RUNNING")
    store.upsert_task("j", 2, state="TASK_STATE_COMPLETE")
    assert store.running_task_counts(["j", "other"]) == {"j": 2, "other": 0}
    assert store.cancel_open_tasks("j", "TASK_STATE_CANCELLED", "t") == [0, 1]
    assert store.running_task_counts(["j"]) == {"j": 0}
    store.close()


def test_log_lines_past_the_cap_keep_head_and_tail_across_trims(tmp_path: Path) -> None:
    from bytenite_nb.server.service.logcap import BATCH, LogCaps

    store = Store(tmp_path / "db.sqlite")
    caps = LogCaps(10)
    other = store.add_event("job.log", "other-job", {"log": "not this job's"})

    def line(i: int) -> None:
        store.add_log("j", "TASKRUNNER", 0, "INFO", f"line {i}", "main", "t")
        store.add_event("job.log", "j", {"log": f"line {i}"})
        if caps.counted("j"):
            caps.trim(store, "j")

    for i in range(10 + 2 * BATCH + 7):  # two trims while it runs, one at the end
        line(i)
    caps.trim(store, "j", final=True)
    kept = [row.message for row in store.logs("j")]
    last = 10 + 2 * BATCH + 7
    dropped = last - 10
    assert kept[:5] == [f"line {i}" for i in range(5)]
    assert kept[6:] == [f"line {i}" for i in range(last - 5, last)]
    assert kept[5].startswith(f"{dropped} output lines of this job were dropped here")
    assert store.logs("j")[5].container == "bytenite-local"
    replay = [e.data["log"] for e in store.events_after(0) if e.job_id == "j"]
    assert replay == kept
    assert [e.seq for e in store.events_after(0) if e.job_id == "other-job"] == [other]
    # a job under the cap is left alone
    for i in range(10):
        store.add_log("small", "TASKRUNNER", 0, "INFO", f"line {i}", "main", "t")
        assert not caps.counted("small")
    caps.trim(store, "small", final=True)
    assert len(store.logs("small")) == 10
    store.close()
