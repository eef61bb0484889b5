"""The bundled csv-rows-template end to end through run_pipeline (real processes)."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb import wire
from bytenite_nb.server.execution.executors import ForkServerExecutor
from bytenite_nb.server.execution.pipeline import PipelineError, PipelineSpec, run_pipeline
from bytenite_nb.server.execution.registry import Registry
from bytenite_nb.wire import LogLevel, LogService
from tests.kit.pipeline import Recorder


@pytest.fixture(scope="module")
def executor() -> Iterator[ForkServerExecutor]:
    ex = ForkServerExecutor(2)
    yield ex
    ex.close()


ROWS = [{"id": str(i), "city": ["Rome", "Oslo", "Lima"][i % 3], "price": str(i * 1.5),
         "qty": str(i % 4), "note": f"line one\nline two, \"quoted\" {i}" if i % 5 == 0 else ""}
        for i in range(25)]


def _csv_source(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows(ROWS)
    return path


def _run(tmp_path: Path, executor: ForkServerExecutor, upload: Path, params: dict[str, Any],
         obs: Recorder | None = None) -> list[dict[str, str]]:
    registry = Registry()
    template = registry.template("csv-rows-template")
    partitioner, app, assembler = registry.resolve_template(template)
    merged = {k: {**template.params.get(k, {}), **params.get(k, {})}
              for k in ("partitioner", "app", "assembler")}
    spec = PipelineSpec(job_id="csv", workdir=tmp_path / "work", data_source=wire.file_source(),
                        partitioner=partitioner, app=app, assembler=assembler, params=merged,
                        task_timeout=60, job_timeout=120, uploaded_file=upload)
    out = run_pipeline(spec, obs or Recorder(), threading.Event(), executor=executor)
    assert [p.name for p in out.iterdir()] == [merged["assembler"].get("output", "result.csv")]
    text = next(out.iterdir()).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def test_identity_keeps_every_row_in_order(tmp_path: Path,
                                           executor: ForkServerExecutor) -> None:
    obs = Recorder()
    rows = _run(tmp_path, executor, _csv_source(tmp_path / "in.csv"),
                {"partitioner": {"rows_per_chunk": 4}}, obs)
    assert obs.chunk_count == 7
    assert rows == ROWS  # quoted multi-line cells survive the round trip


def test_filter_eval_select_steps(tmp_path: Path, executor: ForkServerExecutor) -> None:
    params = {"partitioner": {"rows_per_chunk": 3},
              "app": {"steps": [
                  {"op": "filter", "where": "city == 'Rome' and qty >= 1"},
                  {"op": "eval", "columns": {"total": "round(price * qty, 2)"}},
                  {"op": "select", "columns": ["id", "total"]}]},
              "assembler": {"output": "totals.csv", "chunk_column": "part"}}
    rows = _run(tmp_path, executor, _csv_source(tmp_path / "in.csv"), params)
    expected = [{"id": r["id"], "total": str(round(float(r["price"]) * int(r["qty"]), 2))}
                for r in ROWS if r["city"] == "Rome" and int(r["qty"]) >= 1]
    assert [{"id": r["id"], "total": r["total"]} for r in rows] == expected
    assert [int(r["part"]) for r in rows] == sorted(int(r["part"]) for r in rows)


def test_describe_jsonl(tmp_path: Path, executor: ForkServerExecutor) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"x": i, "tag": "a" if i % 2 else None}) + "\n"
                              for i in range(10)))
    rows = _run(tmp_path, executor, source,
                {"partitioner": {"rows_per_chunk": 5}, "app": {"op": "describe"}})
    by_chunk = {(r["chunk"], r["column"]): r for r in rows}
    assert by_chunk[("0", "x")]["sum"] == "10" and by_chunk[("1", "x")]["sum"] == "35"
    assert by_chunk[("0", "tag")]["missing"] == "3"
    assert by_chunk[("1", "x")]["mean"] == "7.0"


def test_header_only_source_gives_empty_csv(tmp_path: Path,
                                            executor: ForkServerExecutor) -> None:
    source = tmp_path / "empty.csv"
    source.write_text("a,b\n")
    assert _run(tmp_path, executor, source, {}) == []


def test_bad_expression_fails_with_a_clear_message(tmp_path: Path,
                                                   executor: ForkServerExecutor) -> None:
    obs = Recorder()
    with pytest.raises(PipelineError, match="chunk 0 failed with exit code 1: expression"):
        _run(tmp_path, executor, _csv_source(tmp_path / "in.csv"),
             {"app": {"op": "filter", "where": "missing_column > 1"}}, obs)
    assert any(s is LogService.TASKRUNNER and lv is LogLevel.ERROR and "NameError" in m
               for s, _, lv, m, _ in obs.logs)
