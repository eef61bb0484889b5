"""Case 6: a notebook executed by nbclient and saved shows how its jobs ended.

A job started without ``--wait`` used to leave "STARTED Queued 0.0s" in the saved text/html
of its cell while the widget state said COMPLETE, so a saved or GitHub-rendered notebook
showed the wrong outcome. nbclient (what nbconvert ``--execute``, papermill and nbval run)
only reads the messages of the cell it is running; the outcome must reach the saved file all
the same. The notebook runs in a real kernel against a real ByteNite Local, is written to
disk, and the test reads the saved file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from bytenite_nb.local import LocalServer
from tests.kit.apps import SLEEPY_TEMPLATE_ID, standard_apps
from tests.kit.servers import ServerFactory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = standard_apps(tmp_path_factory.mktemp("saved-outcome-apps"))
    return start_module_server(workers=2, apps_dirs=(apps,))


def _run(server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         cells: list[str], **env: str) -> dict[str, Any]:
    """Execute ``cells`` in a fresh kernel with nbclient, save the notebook, read it back."""
    monkeypatch.setenv("BYTENITE_API_KEY", server.api_key)
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "no-local"))
    monkeypatch.delenv("BYTENITE_BASE_URL", raising=False)
    monkeypatch.delenv("BYTENITE_DISPLAY", raising=False)
    monkeypatch.delenv("BYTENITE_NONINTERACTIVE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    head = ["%load_ext bytenite_nb",
            f"%config ByteniteMagics.base_url = '{server.base_url}'\n"
            f"%config ByteniteMagics.ledger_path = '{tmp_path / 'ledger.jsonl'}'"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in head + cells])
    NotebookClient(nb, kernel_name="python3", timeout=180,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "executed.ipynb"
    nbformat.write(nb, saved)
    return json.loads(saved.read_text())


def _outputs(nb: dict[str, Any], index: int) -> list[dict[str, Any]]:
    return nb["cells"][index + 2]["outputs"]  # (after the two head cells)


CELLS = [
    f"%bytenite run {SLEEPY_TEMPLATE_ID} --source bypass --name saved-ok "
    "--param partitioner.chunks=3 --param seconds=0.6 -o ok",
    f"%bytenite run {SLEEPY_TEMPLATE_ID} --source bypass --name saved-fails "
    "--param partitioner.chunks=2 --param seconds=0.6 --param fail_chunk=1 -o bad",
    "ok.wait()\nimport contextlib\nwith contextlib.suppress(Exception):\n    bad.wait()\n"
    "print(ok.status, bad.status)",
]


@pytest.mark.parametrize("mode", ["widget", "log"])
def test_case06_a_saved_notebook_shows_how_its_jobs_ended(
        server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        mode: str) -> None:
    env = {"BYTENITE_NONINTERACTIVE": "1"} if mode == "log" else {}
    nb = _run(server, tmp_path, monkeypatch, CELLS, **env)
    printed = "".join("".join(o["text"]) for o in _outputs(nb, 2)
                      if o["output_type"] == "stream" and o["name"] == "stdout")
    assert printed.strip() == "complete failed"  # (log lines go to stderr, in between)
    for index, mark, word, state in ((0, "✔", "COMPLETE", "complete"),
                                     (1, "✘", "FAILED during tasks", "failed")):
        shown = [o for o in _outputs(nb, index) if o["output_type"] == "display_data"]
        assert len(shown) == 1, shown
        data = shown[0]["data"]
        text = "".join(data["text/plain"])
        # The outcome, not the first live view: no widget reference, no "queued", no 0.0s.
        assert text.startswith(f"{mark} ByteNite job saved-"), text
        assert word in text and "Queued" not in text and "QUEUED" not in text
        assert f'data-state="{state}"' in "".join(data["text/html"])
        assert "application/vnd.jupyter.widget-view+json" not in data
