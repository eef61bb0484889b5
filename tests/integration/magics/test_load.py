"""Results first: ``--load`` binds a finished job's results instead of the job, and every
finished summary says what came out. A real shell against a real ByteNite Local."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError

from bytenite_nb.api.client import Client
from bytenite_nb.notebook import presenter
from bytenite_nb.notebook.preview import ResultsPreview
from bytenite_nb.testing import TestingShell
from tests.integration.magics.conftest import ShellFor
from tests.kit.apps import SLEEPY_TEMPLATE_ID, standard_apps
from tests.kit.servers import ServerFactory

CSV = "csv-rows-template"


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """ByteNite Local with the bundled templates and the standard test apps (several result
    files)."""
    return start_module_server(workers=2,
                               apps_dirs=(standard_apps(tmp_path_factory.mktemp("apps")),))


@pytest.fixture()
def ip(server: Any, shell_for: ShellFor) -> TestingShell:
    return shell_for(server)


@pytest.fixture()
def readings(tmp_path: Path) -> Path:
    path = tmp_path / "readings.csv"
    path.write_text("reading,city\n" + "".join(f"{i},c{i % 3}\n" for i in range(250)))
    return path


def test_load_binds_one_table_and_shows_a_preview(ip: TestingShell, readings: Path) -> None:
    shown = ip.run_line_magic(
        "bytenite", f"run {CSV} --source {readings} "
                    "--param partitioner.rows_per_chunk=100 --load -o df")
    df = ip.user_ns["df"]
    assert isinstance(df, pd.DataFrame) and df.shape == (250, 2)
    assert df["reading"].sum() == sum(range(250))
    # The preview: where it went, its shape, its first rows.
    assert isinstance(shown, ResultsPreview)
    text = repr(shown)
    assert text.startswith("Stored 250 rows × 2 columns from job ") and "in `df`" in text
    assert "reading city" in text.splitlines()[1].strip().replace("  ", " ")
    assert len(text.splitlines()) == 2 + 5  # headline, column names, five rows
    assert "<table" in shown._repr_html_()
    # The job stays at hand.
    job = ip.run_line_magic("bytenite", "attach --last")
    assert df.attrs["job_id"] == job.id and job.status == "complete"
    assert job.num_chunks == 3


def test_load_without_a_variable_is_the_cells_value(ip: TestingShell, readings: Path) -> None:
    df = ip.run_line_magic("bytenite", f"run {CSV} --source {readings} --load")
    assert isinstance(df, pd.DataFrame) and len(df) == 250


def test_a_load_cell_binds_its_variable_to_the_results(ip: TestingShell,
                                                      readings: Path) -> None:
    ip.user_ns["path"] = str(readings)
    ip.run_cell(f"%%bytenite table --load\ntemplateId: {CSV}\nsource: $path\n"
                "params:\n  app: {op: filter, where: reading >= 200}\n")
    table = ip.user_ns["table"]
    assert isinstance(table, pd.DataFrame) and table["reading"].min() == 200
    assert len(table) == 50


def test_several_results_are_a_dict_and_text_is_str(ip: TestingShell) -> None:
    line = (f"run {SLEEPY_TEMPLATE_ID} --source bypass --param partitioner.chunks=3 "
            "--param app.seconds=0")
    shown = ip.run_line_magic("bytenite", f"{line} --load -o parts")
    parts = ip.user_ns["parts"]
    # Text results are str (docs/results.md), so there is nothing to concatenate.
    assert parts == {f"out_{i}.txt": f"done {i}\n" for i in range(3)}
    assert "out_0.txt: text, 1 line" in repr(shown)
    with pytest.raises(UsageError, match=r"^EmptyResultsError: job .*'s results are text "
                                         r"\(out_0\.txt, out_1\.txt, out_2\.txt\): nothing to "
                                         r"concatenate"):
        ip.run_line_magic("bytenite", f"{line} --load --concat")


def test_every_finished_summary_says_what_came_out(
        ip: TestingShell, server: Any, readings: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    client = Client(api_key=server.api_key, base_url=server.base_url)
    job = client.submit(CSV, source=readings, params={"partitioner": {"rows_per_chunk": 100}})
    job.wait(timeout=120)
    assert "1 result file (result.csv)" in repr(job)  # wait() asked what came out
    [result] = job.download(tmp_path / "out")
    assert job.outputs is not None and job.outputs.total_bytes == result.stat().st_size
    monkeypatch.setattr(ip, "display_pub", CapturingDisplayPublisher())
    for mode in ("html", "text"):
        ip.display_pub.outputs.clear()
        shown = presenter.show_job(client.job(job.id), ip=ip, mode=mode)
        if mode == "html":
            assert shown.ended.wait(60)
        data = ip.display_pub.outputs[-1]["data"]
        expected = "1 result file (result.csv), "
        assert expected in data["text/plain"] and "250 rows" in data["text/plain"]
        assert f"%bytenite results {job.id} --load" in data["text/plain"]
        if mode == "html":
            assert expected in data["text/html"] and "250 rows" in data["text/html"]
            assert "job.load_results()" in data["text/html"]
    fresh = client.job(job.id)
    fresh.fetch_outputs()
    assert "250 rows" in repr(fresh) and ".load_results()" in repr(fresh)
