"""Every path is either right or loudly wrong: the cases a new user met, one test each.

Each test is named after the case it reproduces (a 200k-row sales analysis with deliberate
mistakes): a mistake that used to give a wrong answer with no error, or a view that used to
show a state that was not the job's. They run the magics in a real IPython shell against a
real ByteNite Local serving the bundled templates and the shared test apps. Case 6 (saved
notebooks) and case 13 (a key and its server) run a real kernel or a real background
server: see ``test_kernel.py`` and ``test_local.py``; case 12 (dark theme) is a browser test.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError

from bytenite_nb import frames, wire
from bytenite_nb.api.client import Client
from bytenite_nb.api.errors import (
    EmptyResultsError,
    InputError,
    JobFailedError,
    NotFoundError,
    ResultsNotReadyError,
)
from bytenite_nb.local import LocalServer
from bytenite_nb.notebook.presenter import JobDisplay, outcome_bundle
from bytenite_nb.testing import TestingShell
from tests.integration.magics.conftest import ShellFor
from tests.kit.apps import SLEEPY_TEMPLATE_ID, standard_apps, write_app
from tests.kit.processes import until
from tests.kit.servers import ServerFactory

CSV = "csv-rows-template"
HELLO = "hello-world-template"


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = standard_apps(tmp_path_factory.mktemp("never-mislead-apps"))
    write_app(apps, "silent", "print('nothing to say')")  # (writes no result file)
    return start_module_server(workers=2, apps_dirs=(apps,))


@pytest.fixture()
def ip(server: LocalServer, shell_for: ShellFor) -> TestingShell:
    shell = shell_for(server)
    shell.run_cell("%config ByteniteMagics.poll_interval = 0.2")
    return shell


@pytest.fixture()
def sales(tmp_path: Path) -> Path:
    """200 rows of sales, as a CSV file."""
    path = tmp_path / "sales.csv"
    path.write_text("region,amount\n" + "".join(
        f"{['north', 'south'][i % 2]},{i * 1.5}\n" for i in range(200)))
    return path


def magic(ip: TestingShell, line: str) -> Any:
    return ip.run_line_magic("bytenite", line)


def displayed(capsys: pytest.CaptureFixture[str]) -> str:
    """What a cell's result showed on stdout (a terminal shell prefixes it with ``Out[n]:``)."""
    return re.sub(r"^Out\[\d+\]: ", "", capsys.readouterr().out)


def job_ids(client: Client) -> set[str]:
    return {j.id for j in client.jobs()}


def aborted_during_tasks(client: Client, chunks: int = 8) -> Any:
    """A sleepy job aborted once some of its tasks completed and others still ran."""
    job = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", name="to-abort",
                        params={"partitioner": {"chunks": chunks}, "app": {"seconds": 0.4}})
    assert until(lambda: (job.tasks_df().status == "complete").sum() >= 2), "no task completed"
    job.abort()
    assert until(lambda: job.refresh().is_terminal), "the abort"
    return job


# -- case 1 -----------------------------------------------------------------------------------


def test_case01_no_source_is_refused_before_anything_is_created(
        ip: TestingShell, client: Client) -> None:
    """`%bytenite run csv-rows-template --wait` without a source used to complete over bypass's
    empty dummy file: now one line naming the flag, and nothing is created."""
    before = job_ids(client)
    with pytest.raises(UsageError) as err:
        magic(ip, f"run {CSV} --wait -o j")
    assert str(err.value) == f"{CSV} needs input data and none was given: --source PATH|URL"
    with pytest.raises(UsageError, match=r"none was given: --source PATH\|URL"):
        magic(ip, f"run {CSV} --source bypass --wait")
    with pytest.raises(UsageError, match=r"none was given: source: PATH\|URL"):
        ip.run_cell(f"%%bytenite j --wait\ntemplateId: {CSV}\n")
    with pytest.raises(InputError, match=r"none was given: source=PATH\|URL"):
        client.submit(CSV)
    assert job_ids(client) == before and "j" not in ip.user_ns
    # The server refuses it too (a raw API client gets the same rule).
    draft = client.create_job(CSV)
    with pytest.raises(ValueError, match="needs input data and none was given"):
        draft.run()
    draft.delete()

    # JobForm: Run is disabled, with the same words.
    from bytenite_nb.notebook.widgets.form import JobForm

    form = JobForm(client, template=CSV)
    assert form.run_button.disabled
    assert f"{CSV} needs input data and none was given" in form.source_message.value
    form.source_kind.value = "URL"
    form.url.value = "https://example.test/sales.csv"
    assert "needs input data" not in form.source_message.value
    assert not form.run_button.disabled


def test_case01_a_job_over_no_rows_warns_and_its_empty_result_says_so(
        ip: TestingShell, client: Client, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """An input with no rows completes amber with the partitioner's warning, and reading an
    empty result is a sentence, not pandas' EmptyDataError and a 60-line traceback."""
    header_only = tmp_path / "no-rows.csv"
    header_only.write_text("region,amount\n")
    ip.user_ns["header_only"] = header_only
    job = magic(ip, f"run {CSV} --source $header_only --wait -o j")
    capsys.readouterr()
    ip.run_cell("j")  # the cell's output: the finished job's summary
    out = displayed(capsys)
    assert out.startswith("⚠ ByteNite job") and "COMPLETE with 1 warning" in out
    assert "warning: partitioner: no data rows in no-rows.csv" in out
    assert "✔" not in out
    shown = JobDisplay.result(job, ip=ip, mode="html")
    assert shown.ended.wait(30)
    page = outcome_bundle(shown.feed.state)["text/html"]
    assert 'data-tone="warning"' in page and "no data rows in no-rows.csv" in page
    table = job.load_results(concat=True)  # a header and no rows: an empty table, honestly
    assert table.empty and list(table.columns) == ["region", "amount", "result_file"]

    # An empty file in, an empty result out: reading it says so, in one line.
    nothing = client.submit(CSV, source=b"", name="zero-bytes").wait()
    with pytest.raises(EmptyResultsError, match=r"result files are empty \(result\.csv\): "
                                                 r"it produced no rows \(did it get its input"):
        nothing.load_results(concat=True)
    with pytest.raises(UsageError, match=r"^EmptyResultsError: job .* result files are empty"):
        magic(ip, f"results {nothing.id} --load --concat")

    # A job without any result file ends amber too, and reading it says so.
    silent = client.submit("silent-template", source="bypass", name="silent")
    shown = JobDisplay.result(silent, ip=ip, mode="html")
    assert shown.ended.wait(30)
    assert shown.feed.state.tone == "warning"
    assert shown.feed.state.warnings == ("the job produced no result files",)
    with pytest.raises(EmptyResultsError, match="completed without any result files"):
        silent.load_results()


# -- case 2 -----------------------------------------------------------------------------------


def test_case02_a_param_without_a_section_goes_to_the_section_that_declares_it(
        ip: TestingShell, client: Client, sales: Path) -> None:
    """`--param rows_per_chunk=20` used to land in the app's params and be ignored (200/200
    tasks); now it is the partitioner's, and a param no section takes is refused."""
    ip.user_ns["sales"] = sales
    job = magic(ip, f"run {CSV} --source $sales --param rows_per_chunk=20 --wait")
    assert job.status == "complete" and job.num_chunks == 10
    assert client.job(job.id).params["partitioner"]["rows_per_chunk"] == 20
    before = job_ids(client)
    with pytest.raises(UsageError) as err:
        magic(ip, f"run {CSV} --source $sales --param app.rows_per_chunk=20")
    assert str(err.value) == ("rows_per_chunk is a partitioner param: "
                              "--param partitioner.rows_per_chunk=20")
    with pytest.raises(UsageError, match=r"takes a param 'rows_per_chnk'\. "
                                         r"Did you mean 'rows_per_chunk'\?"):
        magic(ip, f"run {CSV} --source $sales --param rows_per_chnk=20")
    with pytest.raises(UsageError, match=r"delimiter is a param of app and partitioner: say "
                                         r"which, --param app\.delimiter=; or"):
        magic(ip, f"run {CSV} --source $sales --param delimiter=;")
    with pytest.raises(UsageError, match=r"params: \{partitioner: \{rows_per_chunk: 5\}\}"):
        ip.run_cell(f"%%bytenite\ntemplateId: {CSV}\nsource: $sales\n"
                    "params: {app: {rows_per_chunk: 5}}\n")
    with pytest.raises(InputError, match=r"params=\{'partitioner': \{'rows_per_chunk': 5\}\}"):
        client.submit(CSV, source=sales, params={"app": {"rows_per_chunk": 5}})
    assert job_ids(client) == before


# -- case 3 -----------------------------------------------------------------------------------


def test_case03_an_unknown_template_in_a_filter_warns_with_a_did_you_mean(
        ip: TestingShell, capsys: pytest.CaptureFixture[str]) -> None:
    frame = magic(ip, "jobs --template csv-row-template")
    assert frame.empty
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"Warning: no jobs, and no template is called 'csv-row-template' on "
        f"{ip.run_line_magic('config', 'ByteniteMagics.base_url')}. "
        "Did you mean 'csv-rows-template'?"]
    with pytest.raises(UsageError, match=r"no template 'csv-row-template' .*Did you mean "
                                         r"'csv-rows-template'\?$"):
        magic(ip, "run csv-row-template --source bypass")


# -- case 4 -----------------------------------------------------------------------------------


def test_case04_abort_updates_the_handle_you_hold(
        ip: TestingShell, client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    """After `%bytenite abort $job` said "now FAILED", `job.state` still said PARTITIONING
    until `.refresh()`. Handles are live now."""
    job = magic(ip, f"run {SLEEPY_TEMPLATE_ID} --source bypass --param seconds=30 -o job")
    assert until(lambda: client.job(job.id).state.is_running), "the job to start"
    capsys.readouterr()
    magic(ip, "abort $job")
    assert capsys.readouterr().out.strip() == f"Aborted job {job.id} (now aborted)."
    held = ip.user_ns["job"]
    assert held.status == "aborted" and held.state is wire.JobState.FAILED  # no refresh()
    # Any other handle of the same job follows too, and deleting says so.
    other = client.job(job.id)
    magic(ip, f"delete {job.id}")
    assert held.status == other.status == "deleted" and "deleted" in repr(held)


# -- cases 5 and 8 ----------------------------------------------------------------------------


def test_case05_attach_draws_a_finished_job_from_its_record_and_tasks(
        ip: TestingShell, client: Client, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`attach --last` on an aborted job said "FAILED during queued … 0/100 tasks done";
    a job whose task failed was drawn "FAILED during queued" with the Queued stage red."""
    job = aborted_during_tasks(client)
    done = int((job.tasks_df().status == "complete").sum())
    magic(ip, f"attach {job.id} -o again")
    capsys.readouterr()
    ip.run_cell("again")
    out = displayed(capsys)
    assert out.startswith(f"■ ByteNite job to-abort ({job.id}): ABORTED during tasks after ")
    assert f"· {done}/8 tasks done" in out and "queued" not in out.lower()

    failed = client.submit(SLEEPY_TEMPLATE_ID, source="bypass", name="task-fails",
                           params={"partitioner": {"chunks": 3},
                                   "app": {"seconds": 0.1, "fail_chunk": 1}})
    with pytest.raises(JobFailedError):
        failed.wait(60)
    monkeypatch.setenv("BYTENITE_DISPLAY", "html")
    shown = JobDisplay.result(client.job(failed.id), ip=ip)
    assert shown.mode == "html" and shown.ended.wait(30)
    view = shown.feed.state
    assert view.failed_at == "tasks" and view.summary.startswith("FAILED during tasks")
    page = outcome_bundle(view)["text/html"]
    steps = page.split('<div style="display:flex;gap:4px', 1)[1].split("</div>", 1)[0]
    red = [s for s in steps.split("</span>") if "#cf222e" in s]
    assert len(red) == 1 and "Tasks" in red[0]  # the stage it failed in, not Queued


def test_case08_an_abort_is_not_a_crash(ip: TestingShell, client: Client,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A user abort was a red FAILED and `--state aborted` was refused; now it is ABORTED in a
    neutral colour, filterable, and a column of the frames."""
    job = aborted_during_tasks(client, chunks=4)
    assert job.status == "aborted" and job.outcome == "aborted"
    frame = magic(ip, "jobs --state aborted")
    assert job.id in frame.index and set(frame.status) == {"aborted"}
    assert job.id not in magic(ip, "jobs --state failed").index
    assert job.id in client.jobs_df(state="aborted").index
    assert client.jobs_df(state="cancelled").equals(client.jobs_df(state="aborted"))
    shown = JobDisplay.result(job, ip=ip, mode="html")
    assert shown.ended.wait(30)
    view = shown.feed.state
    assert (view.state, view.stage, view.tone) == ("aborted", "aborted", "neutral")
    page = outcome_bundle(view)["text/html"]
    assert ">ABORTED<" in page and "#59636e" in page and "#cf222e" not in page.split(
        "display:flex;height:8px")[0]
    with pytest.raises(JobFailedError) as err:
        job.wait()
    assert err.value.aborted and str(err.value).startswith(f"Job {job.id} was aborted")


# -- case 7 -----------------------------------------------------------------------------------


def test_case07_results_of_a_running_job_wait_for_it(
        ip: TestingShell, client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    """`job.load_results()` on a running job raised `BadRequestError ... not yet been
    completed` with no hint; it now waits (showing progress in a notebook) and loads;
    `wait=False` says what to call."""
    job = magic(ip, f"run {SLEEPY_TEMPLATE_ID} --source bypass --param partitioner.chunks=2 "
                    "--param seconds=1.5 -o job")
    with pytest.raises(ResultsNotReadyError, match=r"still (queued|partitioning|running).*"
                                                   r"call job\.wait\(\) first"):
        job.load_results(wait=False)
    with pytest.raises(ResultsNotReadyError, match=r"job\.load_results\(\), which waits"):
        job.results()
    capsys.readouterr()
    ip.run_cell("results = job.load_results()")
    shown = capsys.readouterr().out
    assert f"ByteNite job {job.id}" in shown  # the progress of the job it waited for
    assert ip.user_ns["results"] == {"out_0.txt": "done 0\n", "out_1.txt": "done 1\n"}
    assert job.status == "complete"


# -- case 9 -----------------------------------------------------------------------------------


def test_case09_a_running_job_says_running_and_its_duration_counts(
        client: Client) -> None:
    """While tasks ran the badge said PARTITIONED and the dashboard 0.0s."""
    from bytenite_nb.notebook.widgets.dashboard import JobsDashboard
    from bytenite_nb.notebook.widgets.monitor import JobMonitor

    job = client.submit(SLEEPY_TEMPLATE_ID, source="bypass",
                        params={"partitioner": {"chunks": 2}, "app": {"seconds": 20}})
    monitor = JobMonitor(job)
    dash = JobsDashboard(client, live=False)
    try:
        assert until(lambda: monitor.running > 0), "tasks to run"
        assert monitor.state == "running" and monitor.stage == "tasks"
        assert "RUNNING" in repr(monitor)
        dash.table.page_size = 1000
        dash.refresh()
        [row] = [r for r in dash.table.rows if r["id"] == job.id]
        assert row["status"] == "running" and row["started_at"]
        assert row["duration"] is None  # not the server's 0: the browser counts from started_at
        assert pd.isna(client.jobs_df().loc[job.id, "duration"])
        assert job.duration is not None and job.duration.total_seconds() > 0
    finally:
        job.abort()
        monitor.close()
        dash.close()


# -- case 10 ----------------------------------------------------------------------------------


def test_case10_one_word_for_each_state_everywhere(
        ip: TestingShell, client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    """The same state was JOB_STATE_COMPLETE, COMPLETE and complete; `--state completed` and
    `--level warning` were refused without a suggestion."""
    from bytenite_nb.notebook.widgets.dashboard import JobsDashboard
    from bytenite_nb.notebook.widgets.monitor import JobMonitor

    job = magic(ip, f"run {HELLO} --source bypass --wait -o job")
    words = {
        "job.status": job.status,
        "%bytenite status": magic(ip, f"status {job.id}").state,
        "jobs_df": client.jobs_df().loc[job.id, "status"],
        "tasks_df": job.tasks_df().status.iloc[0],
    }
    monitor = JobMonitor(job)
    assert monitor.ended.wait(30)
    words["monitor"] = monitor.state
    dash = JobsDashboard(client, live=False)
    dash.table.page_size = 1000
    dash.refresh()
    words["dashboard"] = next(r["status"] for r in dash.table.rows if r["id"] == job.id)
    monitor.close()
    dash.close()
    assert set(words.values()) == {"complete"}, words
    assert frames.JOB_STATUS_DTYPE.categories.tolist()[-3:] == ["complete", "failed", "aborted"]
    assert job.id in magic(ip, "jobs --state completed").index
    assert job.id in magic(ip, "jobs --state JOB_STATE_COMPLETE").index
    assert isinstance(magic(ip, f"logs {job.id} --level warning"), pd.DataFrame)
    with pytest.raises(UsageError, match=r"unknown job state 'complet'\. Did you mean "
                                         r"'complete'"):
        magic(ip, "jobs --state complet")
    with pytest.raises(UsageError, match=r"unknown log level 'warnnig'\. Did you mean "
                                         r"'warning'"):
        magic(ip, f"logs {job.id} --level warnnig")


# -- case 11 ----------------------------------------------------------------------------------


def test_case11_errors_are_one_line_a_person_can_act_on(
        ip: TestingShell, client: Client, sales: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    ip.user_ns["sales"] = sales
    with pytest.raises(UsageError) as err:
        magic(ip, f"run {CSV} --source $sales --param partitioner.rows_per_chunk=0")
    text = str(err.value)
    assert text.startswith("BadRequestError: Invalid params: partitioner")
    assert "rows_per_chunk" in text and "minimum" in text
    for padding in ("Returned when", "request id", "Hint", "HTTP 400"):
        assert padding not in text, padding
    with pytest.raises(NotFoundError, match=r"Did you mean 'csv-rows-template'\?"):
        client.submit("csv-row-template", source=sales)

    message = "KeyError: 'amout' is not a column of this chunk " + "(the table has region, " \
              "amount) " * 40
    with pytest.raises(UsageError) as err:
        ip.user_ns["msg"] = message
        magic(ip, f"run {SLEEPY_TEMPLATE_ID} --source bypass --param partitioner.chunks=2 "
                  "--param seconds=0.1 --param fail_chunk=1 --param message=$msg --wait")
    text = str(err.value)
    assert text.startswith("JobFailedError: job ") and " failed: task for chunk 1 failed" in text
    assert text.count("KeyError: 'amout'") == 1  # the error once, not again from the logs
    assert "Hint: `%bytenite logs" in text  # the hint survives the cut
    cut = text.split(". Hint:")[0]
    assert cut.endswith("…") and cut[-2] != " " and cut.rsplit(" ", 1)[-1] in (
        "amount)…", "(the…", "table…", "has…", "region,…")  # cut at a word, never mid-word
    assert "\n" not in text


# -- case 14 ----------------------------------------------------------------------------------


def test_case14_text_results_are_str_as_the_docs_say(ip: TestingShell, tmp_path: Path) -> None:
    """The README and the quickstart said text results come back as `str`; they came back
    as a one-column DataFrame. str it is, and docs/results.md is the one place saying so."""
    notes = tmp_path / "notes.txt"
    notes.write_text("hello from a notebook\n")
    ip.user_ns["notes"] = notes
    job = magic(ip, f"run {HELLO} --source $notes --param case=upper --wait")
    assert job.load_results() == {"hello_world_processed.txt": "HELLO FROM A NOTEBOOK\n"}
    assert magic(ip, f"results {job.id} --load") == job.load_results()
    repo = Path(__file__).resolve().parents[3]
    rule = (repo / "docs" / "results.md").read_text()
    assert "`str`" in rule and ".txt" in rule
    readme = (repo / "README.md").read_text()
    assert "docs/results.md" in readme and "text → str" in readme
