"""The fork server executor's protocol: persistent slot connections, task ids, env diffs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bytenite_nb.server.execution.executors import (
    NOTE_STREAM,
    ForkServerExecutor,
    ProcessResult,
    ProcessSpec,
    base_environment,
)


@pytest.fixture(scope="module")
def one_slot() -> Iterator[ForkServerExecutor]:
    ex = ForkServerExecutor(1)
    yield ex
    ex.close()


def _script(folder: Path, code: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "main.py"
    path.write_text(code)
    return path


def _run(ex: ForkServerExecutor, script: Path, env: dict[str, str] | None = None,
         lines: list[str] | None = None) -> ProcessResult:
    out = lines if lines is not None else []
    return ex.run(ProcessSpec(script, script.parent, env or base_environment()),
                  lambda _stream, line: out.append(line))


def test_one_connection_many_tasks_each_gets_its_own_outcome(
        tmp_path: Path, one_slot: ForkServerExecutor) -> None:
    # One slot, so every task goes over the same connection, where the zygote's reports of
    # earlier tasks arrive late: each result must still be its own task's.
    kinds = {
        "exit3": ("import sys\nsys.exit(3)\n", 3),
        "ok": ("print('fine')\n", 0),
        "os_exit": ("import os\nos._exit(7)\n", 7),  # no report of its own: the zygote's
        "raise": ("raise RuntimeError('boom')\n", 1),
        "killed": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
                   -signal.SIGKILL),
    }
    scripts = {name: _script(tmp_path / name, code) for name, (code, _) in kinds.items()}
    for _ in range(6):
        for name, (_, expected) in kinds.items():
            result = _run(one_slot, scripts[name])
            assert result.outcome == "exited", (name, result)
            assert result.exit_code == expected, (name, result)


def test_task_environment_is_exactly_the_spec(tmp_path: Path,
                                              one_slot: ForkServerExecutor) -> None:
    # Requests carry only differences from the zygote's environment: removals, changes and
    # additions must all come out exactly.
    script = _script(tmp_path / "env", "import json, os\nprint(json.dumps(dict(os.environ)))\n")
    env = base_environment()
    removed = next(iter(env))
    del env[removed]
    env["PYTHONIOENCODING"] = "utf-8:strict"
    env["BN_EXTRA"] = "é ünïcode"
    lines: list[str] = []
    assert _run(one_slot, script, env, lines).ok
    assert json.loads(lines[0]) == env
    # ... and the next task on the same slot is not affected by the previous one's.
    lines.clear()
    assert _run(one_slot, script, None, lines).ok
    assert json.loads(lines[0]) == base_environment()


def test_stray_bytes_on_the_control_connection_do_not_break_the_slot(
        tmp_path: Path, one_slot: ForkServerExecutor) -> None:
    # fd 3 of a task is its connection (for its exit report); an app that writes there by
    # mistake must not confuse the server, nor break the slot for the next task.
    noisy = _script(tmp_path / "noisy", "import os\nos.write(3, b'not json\\n[1]\\n')\n")
    fine = _script(tmp_path / "fine", "print('fine')\n")
    assert _run(one_slot, noisy).ok
    lines: list[str] = []
    assert _run(one_slot, fine, lines=lines).ok
    assert lines == ["fine"]


def test_output_is_complete_although_pipes_close_before_exit(
        tmp_path: Path, one_slot: ForkServerExecutor) -> None:
    # A task closes its pipes right after its exit report (before the kernel tears it
    # down): everything it wrote, including from atexit handlers, still arrives.
    script = _script(tmp_path / "atexit", """
import atexit, sys
atexit.register(lambda: print("from atexit"))
for i in range(2000):
    print(i)
sys.stderr.write("last words")
""")
    lines: list[str] = []
    result = _run(one_slot, script, lines=lines)
    assert result.ok
    assert lines[:2000] == [str(i) for i in range(2000)]
    assert sorted(lines[2000:]) == ["from atexit", "last words"]
    assert result.last_stderr == "last words"


def test_each_slot_has_its_own_zygote_started_on_first_use(tmp_path: Path) -> None:
    rendezvous = tmp_path / "rv"
    rendezvous.mkdir()
    # Each task waits for the other to have started, so both slots are in use at once.
    script = _script(tmp_path / "meet", f"""
import os, sys, time
rv = {str(rendezvous)!r}
open(os.path.join(rv, str(os.getpid())), "w").close()
deadline = time.time() + 30
while len(os.listdir(rv)) < 2:
    if time.time() > deadline:
        sys.exit("the other task never started")
    time.sleep(0.01)
print(os.getppid())
""")
    with ForkServerExecutor(2) as ex:
        assert len(ex.zygote_pids) == 1  # only the first starts up front
        parents: list[int] = []

        def one() -> None:
            lines: list[str] = []
            result = _run(ex, script, lines=lines)
            assert result.ok, result
            parents.append(int(lines[0]))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ex.zygote_pids) == 2
        assert sorted(parents) == sorted(ex.zygote_pids)  # one task forked by each


def test_standard_modules_an_app_imports_are_warm_in_its_tasks(
        tmp_path: Path, one_slot: ForkServerExecutor) -> None:
    # The zygote imports them before forking the app's first task (see entry_imports).
    script = _script(tmp_path / "warm", "import sys\nprint('csv' in sys.modules)\nimport csv\n")
    for _ in range(2):
        lines: list[str] = []
        assert _run(one_slot, script, lines=lines).ok
        assert lines == ["True"]


def test_an_apps_own_module_wins_over_one_the_zygote_holds(
        tmp_path: Path, one_slot: ForkServerExecutor) -> None:
    # `python main.py` imports main.py's neighbours first; the zygote holds the standard
    # library's calendar (another app imported it) and json (it uses json itself).
    stdlib_app = _script(tmp_path / "std", "import calendar\nprint(calendar.month_name[1])\n")
    own_app = _script(tmp_path / "own", "import calendar, json\n"
                                        "print(calendar.MARK, json.MARK)\n")
    (tmp_path / "own" / "calendar.py").write_text("MARK = 'own calendar'\n")
    (tmp_path / "own" / "json").mkdir()
    (tmp_path / "own" / "json" / "__init__.py").write_text("MARK = 'own json'\n")
    for _ in range(2):
        for script, expected in ((stdlib_app, "January"), (own_app, "own calendar own json")):
            lines: list[str] = []
            result = _run(one_slot, script, lines=lines)
            assert result.ok, (lines, result)
            assert lines == [expected]


def test_a_preload_that_cannot_be_imported_is_reported_once(
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    with caplog.at_level("WARNING", logger="bytenite_nb.server.execution.executors.forkserver"):
        ex = ForkServerExecutor(2, preload=["json", "no_such_module_for_bytenite"])
    try:
        script = _script(tmp_path / "app", "import json\nprint(json.dumps([1]))\n")
        lines: list[str] = []
        assert _run(ex, script, lines=lines).ok and lines == ["[1]"]
    finally:
        ex.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "no_such_module_for_bytenite" in warnings[0] and "ModuleNotFoundError" in warnings[0]


@pytest.mark.parametrize("code", [
    "import sys\nprint('x', file=sys.stderr)\ndef f():\n    raise ValueError('bad')\nf()\n",
    "x = 1\ndef (:\n",  # a SyntaxError: python prints it without a traceback
    "import json\njson.loads('{')\n",  # raised inside the standard library
    "raise SystemExit('bye')\n",
])
def test_a_failing_task_prints_what_python_main_py_prints(
        tmp_path: Path, one_slot: ForkServerExecutor, code: str) -> None:
    # No frame of the fork server's own in the app's traceback: it starts at main.py.
    script = _script(tmp_path / "app", code)
    ours: list[str] = []
    result = one_slot.run(ProcessSpec(script, script.parent, base_environment()),
                          lambda stream, line: ours.append(line) if stream == "stderr" else None)
    real = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=script.parent, env=base_environment())
    assert result.exit_code == real.returncode
    assert ours == [line for line in real.stderr.splitlines() if line.strip()]


def test_a_read_only_folder_that_cannot_be_made_so_is_said_and_the_task_still_runs(
        tmp_path: Path, executor: object) -> None:
    # A folder that does not exist cannot be bind-mounted: the run is told, in a line of the
    # executor's own, which folder stays writable and why; the task itself runs.
    missing = str(tmp_path / "no-such-folder")
    script = _script(tmp_path / "app", "print('ran')\n")
    lines: list[tuple[str, str]] = []
    result = executor.run(  # type: ignore[attr-defined]
        ProcessSpec(script, script.parent, base_environment(), readonly=(missing,)),
        lambda stream, line: lines.append((stream, line)))
    assert result.exit_code == 0
    assert ("stdout", "ran") in lines
    [note] = [line for stream, line in lines if stream == NOTE_STREAM]
    assert missing in note and "writable" in note and "read-only" in note
