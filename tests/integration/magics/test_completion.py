"""Tab completion of %bytenite lines and %%bytenite cells, through IPython's completer API,
in a real shell talking to a real ByteNite Local."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from IPython.core.completer import provisionalcompleter

from bytenite_nb.notebook.completion import TemplateCache
from bytenite_nb.testing import TestingShell
from tests.integration.magics.conftest import ShellFor

HELLO = "hello-world-template"
CSV = "csv-rows-template"


@pytest.fixture()
def ip(local_server: Any, shell_for: ShellFor) -> TestingShell:
    return shell_for(local_server)


def complete(ip: TestingShell, text: str) -> list[tuple[str, str]]:
    """(text, type) of every completion at the end of ``text``, as a frontend gets them."""
    with provisionalcompleter():
        found = list(ip.Completer.completions(text, len(text)))
    return [(c.text, c.type) for c in found]


def texts(ip: TestingShell, text: str) -> list[str]:
    return [t for t, _ in complete(ip, text)]


def eventually(check: Callable[[], Any], what: str) -> Any:
    """Call ``check`` until it returns something truthy (the template list is fetched in
    the background: the first Tab may come before it arrives)."""
    for _ in range(200):
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never completed: {what}")


def test_verbs_and_only_ours_on_a_bytenite_line(ip: TestingShell) -> None:
    assert texts(ip, "%bytenite r") == ["run", "results"]
    assert complete(ip, "%bytenite tem") == [("templates", "verb"), ("template", "verb")]
    # The same in an assignment, and nothing of ours elsewhere.
    assert texts(ip, "jobs = %bytenite jo") == ["jobs", "job"]
    assert "run" not in texts(ip, "ru")


def test_flags_come_from_each_verbs_parser(ip: TestingShell) -> None:
    assert texts(ip, f"%bytenite run {HELLO} --so") == ["--source"]
    assert "--keep-running" in texts(ip, f"%bytenite run {HELLO} --")
    used = texts(ip, f"%bytenite run {HELLO} --wait --param a=1 --")
    assert "--wait" not in used and "--no-wait" in used
    assert "--param" in used  # repeatable flags stay on offer
    assert texts(ip, "%bytenite logs abc --le") == ["--level"]
    assert texts(ip, "%%bytenite job --w") == ["--wait"]


def test_template_ids_states_levels_and_choices(ip: TestingShell) -> None:
    eventually(lambda: HELLO in texts(ip, "%bytenite run "), "template ids")
    ids = texts(ip, "%bytenite run ")
    assert HELLO in ids and CSV in ids
    assert complete(ip, "%bytenite run hello")[0] == (HELLO, "template")
    assert texts(ip, "%bytenite jobs --template csv") == [CSV]
    assert texts(ip, "%bytenite template hel") == [HELLO]
    assert "complete" in texts(ip, "%bytenite jobs --state ")
    assert "aborted" in texts(ip, "%bytenite jobs --state ")  # the status words
    assert texts(ip, "%bytenite jobs --state fa") == ["failed"]
    assert texts(ip, "%bytenite logs abc --level w") == ["warn"]
    assert texts(ip, "%bytenite local st") == ["start", "stop", "status"]
    assert texts(ip, "%bytenite help lo") == ["logs", "login", "local"]


def test_params_of_the_named_template(ip: TestingShell) -> None:
    eventually(lambda: HELLO in texts(ip, "%bytenite run "), "template ids")
    params = texts(ip, f"%bytenite run {CSV} --param ")
    assert "partitioner.rows_per_chunk=" in params
    assert "app.where=" in params and "assembler.output=" in params
    assert texts(ip, f"%bytenite run {CSV} --wait --param partitioner.r") == [
        "partitioner.rows_per_chunk="]
    assert texts(ip, f"%bytenite run {CSV} --config task") == ["taskTimeout="]


def test_job_ids_from_the_ledger_and_the_last_listing(ip: TestingShell) -> None:
    job = ip.run_line_magic("bytenite", f"run {HELLO} --source bypass --wait")
    offered = complete(ip, "%bytenite status ")
    assert (job.id, "job id") in offered
    assert texts(ip, f"%bytenite logs {job.id[:6]}") == [job.id]
    listing = ip.run_line_magic("bytenite", "jobs --limit 3")
    assert set(listing.index) <= set(texts(ip, "%bytenite results "))


def test_dollar_names_from_the_namespace(ip: TestingShell) -> None:
    ip.user_ns.update(table_path="x.csv", table_rows=3, helper=len)
    assert texts(ip, f"%bytenite run {HELLO} --source $tab") == ["$table_path", "$table_rows"]
    assert "$helper" not in texts(ip, f"%bytenite run {HELLO} --source $")
    assert texts(ip, "%bytenite status $table_p") == ["$table_path"]


def test_cell_body_keys_sections_and_params(ip: TestingShell) -> None:
    eventually(lambda: HELLO in texts(ip, "%bytenite run "), "template ids")
    assert ("templateId: ", "spec key") in complete(ip, "%%bytenite job\ntem")
    used = texts(ip, f"%%bytenite job\ntemplateId: {CSV}\n")
    assert "templateId: " not in used and "params: " in used and "source: " in used
    assert texts(ip, "%%bytenite job\ntemplateId: csv") == [CSV]
    assert texts(ip, f"%%bytenite job\ntemplateId: {CSV}\nparams:\n  pa") == ["partitioner:"]
    body = f"%%bytenite job\ntemplateId: {CSV}\nparams:\n  partitioner:\n    rows"
    assert complete(ip, body) == [("rows_per_chunk: ", "param")]
    app = f"%%bytenite job --template {CSV}\nparams:\n  app:\n    "
    assert {"op: ", "where: ", "columns: "} <= set(texts(ip, app))
    assert texts(ip, "%%bytenite job\nconfig:\n  max") == ["maxTaskRetries: "]
    ip.user_ns["rows"] = 10
    assert texts(ip, f"%%bytenite job\ntemplateId: {CSV}\nsource: $ro") == ["$rows"]


def test_unload_removes_the_matcher(ip: TestingShell) -> None:
    assert texts(ip, "%bytenite r") == ["run", "results"]
    ip.run_cell("%unload_ext bytenite_nb")
    assert "run" not in texts(ip, "%bytenite r")
    ip.run_cell("%load_ext bytenite_nb")


def test_a_slow_server_never_blocks_a_completion() -> None:
    """The fetch runs on its own thread; get() returns what it has, however long it takes."""
    release = threading.Event()
    calls: list[str] = []

    class Tpl:
        def __init__(self, id: str) -> None:
            self.id = id

    def fetch() -> list[Tpl]:
        calls.append(threading.current_thread().name)
        release.wait(30)
        return [Tpl("late-template")]

    cache = TemplateCache(fetch)
    assert cache.get(wait=0.0) == {}       # returns at once while the fetch hangs
    assert cache.get(wait=0.0) == {}       # and does not start a second fetch
    release.set()
    eventually(lambda: cache.get(wait=0.0), "the late template")
    assert calls == ["bytenite-template-cache"]
    assert list(cache.get()) == ["late-template"]


def test_an_unreachable_server_gives_no_template_ids_and_no_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYTENITE_API_KEY", "k" * 20)
    shell = TestingShell.create()
    try:
        shell.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:9'")
        assert not {t for t, kind in complete(shell, "%bytenite run ") if kind == "template"}
        assert texts(shell, "%bytenite r") == ["run", "results"]
    finally:
        shell.run_cell("%unload_ext bytenite_nb")
        shell.dispose()
