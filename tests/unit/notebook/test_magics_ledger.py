"""The local ledger behind `%bytenite attach --last`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bytenite_nb.notebook.ledger import Ledger, normalize_base_url


def test_record_and_last_per_server(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "sub" / "ledger.jsonl")
    assert ledger.last() is None
    ledger.record("j1", "http://a:1/", template_id="t", name="one")
    ledger.record("j2", "http://b:2/v1/customer")
    ledger.record("j3", "http://a:1")
    assert ledger.last().job_id == "j3"
    assert ledger.last("http://a:1/v1/customer").job_id == "j3"
    assert ledger.last("http://b:2").job_id == "j2"
    assert [e.job_id for e in ledger.entries("http://a:1")] == ["j1", "j3"]
    first = ledger.entries()[0]
    assert (first.template_id, first.name) == ("t", "one")
    assert first.created_at and first.created_at.endswith("Z")
    assert stat.S_IMODE(os.stat(ledger.path).st_mode) == 0o600


def test_damaged_lines_are_skipped(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record("j1", "http://a")
    with ledger.path.open("a") as fh:
        fh.write('{"job_id": "torn\n[1, 2]\n{"nope": 1}\n')
    ledger.record("j2", "http://a")
    assert [e.job_id for e in ledger.entries()] == ["j1", "j2"]


def test_compaction_keeps_the_newest(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl", max_entries=5)
    for i in range(23):
        ledger.record(f"j{i}", "http://a")
    entries = ledger.entries()
    assert len(entries) < 10
    assert entries[-1].job_id == "j22"
    assert [e.job_id for e in entries] == [f"j{i}" for i in range(23 - len(entries), 23)]


def test_normalize_base_url() -> None:
    assert normalize_base_url("http://h:1/v1/computing/") == "http://h:1"
    assert normalize_base_url(None) == ""
