"""The ByteNite Hello World tutorial, through the Python client, against a real ByteNite Local."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bytenite_nb import wire
from bytenite_nb.api import Client, JobSnapshot
from tests.kit.loopback import serve_dir

TEXT = "Hello, World! This is ByteNite Local.\n"


@pytest.fixture(scope="module")
def source_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("hello-src")
    (folder / "hello-world-I.txt").write_text(TEXT)
    with serve_dir(folder) as url:
        yield f"{url}/hello-world-I.txt"


def test_hello_world_end_to_end(client: Client, source_url: str, tmp_path: Path) -> None:
    updates: list[JobSnapshot] = []
    job = client.submit(
        "hello-world-template",
        source=source_url,
        params={"app": {"case": "upper"}},
        name="hello through the client",
    )
    assert job.state is not wire.JobState.NEW  # submitted and running (or already done)
    job.wait(timeout=120, on_update=updates.append)
    assert job.state is wire.JobState.COMPLETE
    assert job.num_chunks == 1
    assert job.started_at is not None and job.ended_at is not None and job.duration is not None
    assert updates and updates[-1].state is wire.JobState.COMPLETE

    results = job.results()
    assert [r.name for r in results] == ["hello_world_processed.txt"]
    paths = job.download(tmp_path)
    assert paths == [tmp_path / "hello_world_processed.txt"]
    assert paths[0].read_text() == TEXT.upper()

    table = job.load_results()
    assert list(table) == ["hello_world_processed.txt"]
    assert table["hello_world_processed.txt"] == TEXT.upper()  # text results are str

    logs = job.logs()
    assert logs and all(entry.job_id == job.id for entry in logs)
    frame = job.logs_df()
    assert len(frame) == len(logs) and str(frame["timestamp"].dtype) == "datetime64[us, UTC]"


def test_hello_world_from_uploaded_bytes(client: Client) -> None:
    job = client.submit(
        "hello-world-template", source=b"shout this", params={"app": {"case": "upper"}}
    )
    assert job.data_source["dataSourceDescriptor"] == "file"
    job.wait(timeout=120)
    [result] = job.results()
    import requests

    assert requests.get(result.link, timeout=30).text == "SHOUT THIS"


def test_hello_world_from_a_large_file_path(client: Client, tmp_path: Path) -> None:
    # (That a path is streamed, never read whole, is test_submit_streams_a_path's part.)
    src = tmp_path / "big.txt"
    src.write_text("abc\n" * 200_000)  # 800 kB
    job = client.submit("hello-world-template", source=src, params={"app": {"case": "upper"}})
    job.wait(timeout=120)
    [path] = job.download(tmp_path / "out")
    assert path.read_text() == "ABC\n" * 200_000


def test_csv_job_results_load_into_one_dataframe(client: Client) -> None:
    rows = "x,y\n" + "".join(f"{i},{i * i}\n" for i in range(2500))
    job = client.submit(
        "csv-rows-template",
        source=rows.encode(),
        params={
            "partitioner": {"rows_per_chunk": 1000},
            "app": {"op": "filter", "where": "x % 2 == 0"},
            "assembler": {"output": "result.csv"},
        },
    )
    job.wait(timeout=180)
    assert job.num_chunks == 3
    tables = job.load_results()
    assert list(tables) == ["result.csv"]
    frame = tables["result.csv"]
    assert sorted(frame["x"].tolist()) == list(range(0, 2500, 2))
    assert (frame["y"] == frame["x"] ** 2).all()
    combined = job.load_results(concat=True)
    assert len(combined) == 1250 and set(combined["result_file"]) == {"result.csv"}
    tasks = job.tasks_df()
    assert tasks["chunk_number"].tolist() == [0, 1, 2]
    assert (tasks["status"] == "complete").all()
