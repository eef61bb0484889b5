"""The pipeline runs real processes with exactly the runtime contract's environment."""

from __future__ import annotations

import json
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bytenite_nb import wire
from bytenite_nb.server.execution.executors import ForkServerExecutor
from bytenite_nb.server.execution.pipeline import (
    PipelineError,
    chunk_files,
    flatten_results,
    parse_level,
    run_pipeline,
)
from bytenite_nb.server.execution.registry import Registry
from bytenite_nb.wire import JobState, LogLevel, LogService, TaskState
from tests.kit.apps import READ_SHARED, REPLICAS, ZIPPER
from tests.kit.pipeline import Recorder, load_engine, spec

DUMP_ENV = """
import json, os, sys
target = os.path.join(os.environ["DUMP_TO"], sys.argv[0].split(os.sep)[-3] + "-" +
                      os.environ.get("CHUNK_NUMBER", "x") + ".json")
with open(target, "w") as f:
    json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv,
               "path0": sys.path[0], "name": __name__}, f)
"""


@pytest.fixture()
def forkserver() -> Iterator[ForkServerExecutor]:
    ex = ForkServerExecutor(2)
    yield ex
    ex.close()


def test_runtime_contract_env_per_stage(tmp_path: Path, executor: object,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    # Tasks get a clean environment, so the dump folder travels in the code itself.
    code = DUMP_ENV.replace('os.environ["DUMP_TO"]', repr(str(dump)))
    partitioner = load_engine(tmp_path / "apps", "dump-part", code + """
open(os.path.join(os.environ["CHUNKS_DIR"], "data_0.bin"), "w").write("zero")
open(os.path.join(os.environ["CHUNKS_DIR"], "data_1.bin"), "w").write("one")
""", kind="partitioner")
    app = load_engine(tmp_path / "apps", "dump-app", code + """
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "r.txt"), "w").write(
    open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read())
""")
    assembler = load_engine(tmp_path / "apps", "dump-asm", code, kind="assembler")
    monkeypatch.setenv("BYTENITE_LOCAL_API_KEYS", "secret-key-must-not-leak")
    s = spec(tmp_path, app, partitioner=partitioner, assembler=assembler,
             params={"partitioner": {"p": 1}, "app": {"a": [1, 2]}, "assembler": None})
    out = run_pipeline(s, Recorder(), threading.Event(), executor=executor)  # type: ignore[arg-type]
    assert out == s.workdir / "output"

    def load(stage: str, chunk: str = "x") -> dict:
        return json.loads((dump / f"{stage}-{chunk}.json").read_text())

    common = {"SHARED_CACHE_DIR", "USER_CACHE_DIR", "SECRETS"}
    p = load("dump-part")
    assert {"SOURCE_DIR", "CHUNKS_DIR", "PARTITIONER_PARAMS"} | common <= p["env"].keys()
    assert json.loads(p["env"]["PARTITIONER_PARAMS"]) == {"p": 1}
    assert json.loads(p["env"]["SECRETS"]) == []
    assert [x.name for x in Path(p["env"]["SOURCE_DIR"]).iterdir()] == ["dummy_file"]
    assert not {"TASK_DIR", "OUTPUT_DIR", "APP_PARAMS"} & p["env"].keys()
    assert p["name"] == "__main__"
    assert p["path0"] == str(partitioner.app_dir)
    assert p["argv"] == [str(partitioner.entrypoint_path)]
    assert "BYTENITE_LOCAL_API_KEYS" not in p["env"]
    for n in (0, 1):
        t = load("dump-app", str(n))
        assert {"TASK_DIR", "TASK_RESULTS_DIR", "APP_PARAMS", "CHUNK_NUMBER"} | common <= (
            t["env"].keys())
        assert t["env"]["CHUNK_NUMBER"] == str(n)
        assert json.loads(t["env"]["APP_PARAMS"]) == {"a": [1, 2]}
        assert not {"SOURCE_DIR", "CHUNKS_DIR", "OUTPUT_DIR"} & t["env"].keys()
    a = load("dump-asm")
    assert {"TASK_RESULTS_DIR", "OUTPUT_DIR", "ASSEMBLER_PARAMS"} | common <= a["env"].keys()
    assert json.loads(a["env"]["ASSEMBLER_PARAMS"]) == {}  # None still gives a JSON object
    assert sorted(p.name for p in Path(a["env"]["TASK_RESULTS_DIR"]).iterdir()) == [
        "r-chunk1.txt", "r.txt"]


def test_bypass_source_gives_partitioner_one_dummy_file(tmp_path: Path,
                                                       forkserver: ForkServerExecutor) -> None:
    app = load_engine(tmp_path / "apps", "ls", """
import os
names = sorted(os.listdir(os.environ["TASK_DIR"]))
size = os.path.getsize(os.path.join(os.environ["TASK_DIR"], "data.bin"))
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "seen.txt"), "w").write(f"{names} {size}")
""")
    rec = Recorder()
    out = run_pipeline(spec(tmp_path, app), rec, threading.Event(), executor=forkserver)
    assert (out / "seen.txt").read_text() == "['data.bin'] 0"
    assert rec.chunk_count == 1
    assert rec.stages == [JobState.UPLOADING, JobState.PARTITIONING, JobState.PARTITIONED,
                          JobState.TASKS_COMPLETED, JobState.MERGING, JobState.MERGED,
                          JobState.DOWNLOADING]
    assert rec.states(0) == [(TaskState.QUEUED, 1), (TaskState.RUNNING, 1),
                             (TaskState.COMPLETE, 1)]


def test_hello_world_template_with_file_source(tmp_path: Path,
                                               forkserver: ForkServerExecutor) -> None:
    registry = Registry()
    partitioner, app, assembler = registry.resolve_template("hello-world-template")
    upload = tmp_path / "upload.bin"
    upload.write_text("Hello, ByteNite!\nsecond line\n", encoding="utf-8")
    s = spec(tmp_path, app, partitioner=partitioner, assembler=assembler,
             data_source=wire.file_source(), uploaded_file=upload,
             params={"app": {"case": "upper"}})
    rec = Recorder()
    out = run_pipeline(s, rec, threading.Event(), executor=forkserver)
    assert [p.name for p in out.iterdir()] == ["hello_world_processed.txt"]
    assert (out / "hello_world_processed.txt").read_text() == "HELLO, BYTENITE!\nSECOND LINE\n"
    assert any("Wrote" in m for m in rec.messages(LogLevel.INFO))
    assert upload.read_text().startswith("Hello")  # the upload itself is untouched


@pytest.mark.parametrize("case,expected", [("lower", "mixed case"), ("title", "Mixed Case"),
                                           ("shout", "MiXed cASE")])
def test_hello_world_cases(tmp_path: Path, forkserver: ForkServerExecutor, case: str,
                           expected: str) -> None:
    _partitioner, app, _assembler = Registry().resolve_template("hello-world-template")
    upload = tmp_path / "in.txt"
    upload.write_text("MiXed cASE")
    s = spec(tmp_path, app, data_source=wire.file_source(), uploaded_file=upload,
             params={"app": {"case": case}})
    out = run_pipeline(s, Recorder(), threading.Event(), executor=forkserver)
    assert (out / "hello_world_processed.txt").read_text() == expected


def test_chunk_order_and_chunk_numbers(tmp_path: Path, forkserver: ForkServerExecutor) -> None:
    partitioner = load_engine(tmp_path / "apps", "odd-names", """
import os
d = os.environ["CHUNKS_DIR"]
for name in ["data_10.bin", "zz.txt", "data_2.bin", "aa.bin", "data_0.bin"]:
    open(os.path.join(d, name), "w").write(name)
os.mkdir(os.path.join(d, "nested"))
""", kind="partitioner")
    app = load_engine(tmp_path / "apps", "echo", """
import os
data = open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read()
n = os.environ["CHUNK_NUMBER"]
open(os.path.join(os.environ["TASK_RESULTS_DIR"], f"{n}.txt"), "w").write(data)
""")
    rec = Recorder()
    out = run_pipeline(spec(tmp_path, app, partitioner=partitioner), rec, threading.Event(),
                       executor=forkserver)
    got = {int(p.stem): p.read_text() for p in out.iterdir()}
    assert got == {0: "data_0.bin", 1: "data_2.bin", 2: "data_10.bin", 3: "aa.bin", 4: "zz.txt"}
    assert rec.chunk_count == 5
    assert any("CHUNKS_DIR/nested is a folder and was ignored" in m
               for m in rec.messages(LogLevel.WARN))


def test_same_result_name_in_every_task_reaches_zipper(tmp_path: Path,
                                                       executor: object) -> None:
    n = 7
    partitioner = load_engine(tmp_path / "apps", "replicas", REPLICAS, kind="partitioner")
    app = load_engine(tmp_path / "apps", "same-name", """
import os
data = open(os.path.join(os.getenv("TASK_DIR"), "data.bin")).read()
with open(os.path.join(os.getenv("TASK_RESULTS_DIR"), "output_image.png"), "w") as f:
    f.write(data)
""")
    zipper = load_engine(tmp_path / "apps", "zipper", ZIPPER, kind="assembler")
    s = spec(tmp_path, app, partitioner=partitioner, assembler=zipper,
             params={"partitioner": {"num_replicas": n}})
    out = run_pipeline(s, Recorder(), threading.Event(), executor=executor)  # type: ignore[arg-type]
    with zipfile.ZipFile(out / "results_archive.zip") as z:
        names = sorted(z.namelist())
        contents = sorted(z.read(name).decode() for name in names)
    assert len(names) == n
    assert contents == sorted(f"replica {i}" for i in range(n))
    assert "output_image.png" in names and "output_image-chunk6.png" in names


def test_passthrough_assembler_keeps_subdirectories(tmp_path: Path,
                                                    forkserver: ForkServerExecutor) -> None:
    partitioner = load_engine(tmp_path / "apps", "two", REPLICAS, kind="partitioner")
    app = load_engine(tmp_path / "apps", "nested", """
import os
root = os.environ["TASK_RESULTS_DIR"]
os.makedirs(os.path.join(root, "plots", "png"))
open(os.path.join(root, "plots", "png", "p.txt"), "w").write(os.environ["CHUNK_NUMBER"])
open(os.path.join(root, "summary.json"), "w").write("{}")
""")
    s = spec(tmp_path, app, partitioner=partitioner, params={"partitioner": {"num_replicas": 2}})
    out = run_pipeline(s, Recorder(), threading.Event(), executor=forkserver)
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["plots/png/p-chunk1.txt", "plots/png/p.txt", "summary-chunk1.json",
                     "summary.json"]
    assert (out / "plots/png/p.txt").read_text() == "0"
    assert (out / "plots/png/p-chunk1.txt").read_text() == "1"


def test_failing_app_raises_with_chunk_exit_code_and_stderr(tmp_path: Path,
                                                            executor: object) -> None:
    app = load_engine(tmp_path / "apps", "boom", """
import sys
print("starting")
print("WARNING:root:about to fail", file=sys.stderr)
raise RuntimeError("the model file is missing")
""")
    rec = Recorder()
    with pytest.raises(PipelineError) as info:
        run_pipeline(spec(tmp_path, app), rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    message = str(info.value)
    assert "chunk 0" in message and "exit code 1" in message
    assert "RuntimeError: the model file is missing" in message
    errors = [m for s, c, lv, m, cont in rec.logs
              if lv is LogLevel.ERROR and s is LogService.TASKRUNNER and cont == "main"]
    assert "RuntimeError: the model file is missing" in errors
    assert any(m.startswith("Traceback") for m in errors)
    assert ("starting" in rec.messages(LogLevel.INFO))
    assert "WARNING:root:about to fail" in rec.messages(LogLevel.WARN)
    assert rec.states(0)[-1] == (TaskState.FAILED, 1)
    assert JobState.TASKS_COMPLETED not in rec.stages


def test_exit_codes_from_sys_exit(tmp_path: Path, forkserver: ForkServerExecutor) -> None:
    app = load_engine(tmp_path / "apps", "exit3", "import sys\nsys.exit(3)\n")
    with pytest.raises(PipelineError, match="exit code 3"):
        run_pipeline(spec(tmp_path, app), Recorder(), threading.Event(), executor=forkserver)
    app = load_engine(tmp_path / "apps2", "exitmsg", "import sys\nsys.exit('bad input file')\n")
    with pytest.raises(PipelineError, match="exit code 1: bad input file"):
        run_pipeline(spec(tmp_path, app), Recorder(), threading.Event(), executor=forkserver)


def test_failing_partitioner_and_assembler(tmp_path: Path, forkserver: ForkServerExecutor) -> None:
    ok = load_engine(tmp_path / "apps", "ok", "print('ok')\n")
    bad_part = load_engine(tmp_path / "apps", "bad-part", "raise SystemExit(5)\n",
                           kind="partitioner")
    with pytest.raises(PipelineError, match=r"partitioner bad-part@0.1 failed with exit code 5"):
        run_pipeline(spec(tmp_path, ok, partitioner=bad_part), Recorder(), threading.Event(),
                     executor=forkserver)
    empty = load_engine(tmp_path / "apps", "empty", "pass\n", kind="partitioner")
    with pytest.raises(PipelineError, match="wrote no chunks"):
        run_pipeline(spec(tmp_path, ok, partitioner=empty), Recorder(), threading.Event(),
                     executor=forkserver)
    bad_asm = load_engine(tmp_path / "apps", "bad-asm",
                          "import sys\nprint('no space', file=sys.stderr)\nsys.exit(2)\n",
                          kind="assembler")
    rec = Recorder()
    with pytest.raises(PipelineError, match=r"assembler bad-asm@0\.1 failed with exit code 2: no "):
        run_pipeline(spec(tmp_path, ok, assembler=bad_asm), rec, threading.Event(),
                     executor=forkserver)
    assert (LogService.ASSEMBLER, None, LogLevel.ERROR, "no space", "main") in rec.logs


def test_parse_level() -> None:
    assert parse_level("plain", "stdout") is LogLevel.INFO
    assert parse_level("plain", "stderr") is LogLevel.ERROR
    assert parse_level("WARNING:root:x", "stderr") is LogLevel.WARN
    assert parse_level("INFO:app:started", "stderr") is LogLevel.INFO
    assert parse_level("DEBUG:x", "stdout") is LogLevel.DEBUG
    assert parse_level("CRITICAL:x", "stdout") is LogLevel.FATAL
    assert parse_level("[ERROR] disk full", "stdout") is LogLevel.ERROR
    assert parse_level("2024-05-01 10:00:00,123 - app - WARNING - slow", "stderr") is LogLevel.WARN
    assert parse_level("INFORMATION is not a level", "stderr") is LogLevel.ERROR
    assert parse_level("Warning: lower case is not a prefix", "stderr") is LogLevel.ERROR


def test_chunk_files_order(tmp_path: Path) -> None:
    for name in ["data_3.bin", "data_12.bin", "b", "a", "data_x.bin"]:
        (tmp_path / name).write_text(name)
    (tmp_path / "subdir").mkdir()
    assert [p.name for p in chunk_files(tmp_path)] == [
        "data_3.bin", "data_12.bin", "a", "b", "data_x.bin"]


def test_flatten_results_never_loses_a_file(tmp_path: Path) -> None:
    tasks = []
    for n in range(3):
        d = tmp_path / f"t{n}"
        (d / "sub").mkdir(parents=True)
        (d / "out.tar.gz").write_text(f"tar{n}")
        (d / "sub" / "x.txt").write_text(f"x{n}")
        (d / ".hidden").write_text(f"h{n}")
        tasks.append((n, d))
    # chunk 1 writes a file where the others have a folder, and the rename target pre-exists
    (tmp_path / "t1" / "sub" / "x.txt").unlink()
    (tmp_path / "t1" / "sub").rmdir()
    (tmp_path / "t1" / "sub").write_text("file-sub")
    (tmp_path / "t2" / "out-chunk2.tar.gz").write_text("squatter")
    notes: list[str] = []
    dest = tmp_path / "dest"
    moved = flatten_results(tasks, dest, lambda c, m: notes.append(m))
    files = {p.relative_to(dest).as_posix(): p.read_text() for p in dest.rglob("*")
             if p.is_file()}
    assert moved == len(files) == 10
    assert files["out.tar.gz"] == "tar0"
    assert files["out-chunk1.tar.gz"] == "tar1"
    assert sorted(v for v in files.values()) == sorted(
        ["tar0", "tar1", "tar2", "squatter", "x0", "x2", "h0", "h1", "h2", "file-sub"])
    assert files["sub-chunk1"] == "file-sub"
    assert files[".hidden-chunk2"] == "h2"
    assert notes  # renames are reported


def test_output_lines_utf8_partial_and_interleaved(tmp_path: Path, executor: object) -> None:
    app = load_engine(tmp_path / "apps", "chatty", """
import logging, sys
print("naïve café ✓")
sys.stdout.write("no newline at the end")
logging.basicConfig()
logging.getLogger("app").warning("careful")
sys.stderr.buffer.write(b"bad bytes \\xff\\xfe\\n")
""")
    rec = Recorder()
    run_pipeline(spec(tmp_path, app), rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    assert "naïve café ✓" in rec.messages(LogLevel.INFO)
    assert "no newline at the end" in rec.messages(LogLevel.INFO)
    assert "WARNING:app:careful" in rec.messages(LogLevel.WARN)
    assert "bad bytes \ufffd\ufffd" in rec.messages(LogLevel.ERROR)
    assert all(c == "main" for *_, c in rec.logs)


def test_the_shared_cache_is_read_only_for_tasks_on_every_local_executor(
        tmp_path: Path, executor: object) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "weights.bin").write_text("model weights")
    app = load_engine(tmp_path / "apps", "read-shared", READ_SHARED)
    rec = Recorder()
    out = run_pipeline(spec(tmp_path, app, shared_cache_dir=shared,
                            params={"app": {"path": "weights.bin"}}),
                       rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    report = json.loads((out / "report.json").read_text())
    assert report == {"content": "model weights",
                      "attempts": {"create": "Read-only file system",
                                   "replace": "Read-only file system",
                                   "delete": "Read-only file system"}}
    # the server itself can still write there; nothing of the task's is
    assert sorted(p.name for p in shared.iterdir()) == ["weights.bin"]
    assert (shared / "weights.bin").read_text() == "model weights"
    assert not [line for *_, line, _ in rec.logs if "writable" in line]
