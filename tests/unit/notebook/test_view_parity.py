"""The Python view model and the widget's JS logic agree on stages, grid characters, colours,
elapsed-time text, rate and time-left text, and what a finished job produced.

The live card (``js/monitor_logic.js``) and the static outcome (``widgets/_view.py``) draw the
same job; when one side gains a stage or a grid character and the other does not, the card
and the saved outcome disagree. Node reads the constants straight from the JS module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.notebook.widgets import _view
from bytenite_nb.notebook.widgets._rate import format_eta, format_rate
from bytenite_nb.wire import TaskState

REPO = Path(__file__).resolve().parents[3]
MONITOR_LOGIC = REPO / "js" / "monitor_logic.js"
ELAPSED_MS = [0, 50, 4200, 9990, 10_000, 59_900, 60_000, 65_000, 3_599_000, 3_600_000,
              3_725_000, 86_399_000]

_DUMP = """
const m = await import(process.argv[1]);
const r = await import(process.argv[1].replace("monitor_logic.js", "rate_logic.js"));
const ms = JSON.parse(process.argv[2]);
console.log(JSON.stringify({
  stages: m.STAGES,
  labels: m.STAGE_LABELS,
  endStages: m.END_STAGES,
  grid: m.GRID_STATES,
  tones: m.TONE_COLORS,
  toneOf: [["done", []], ["done", ["w"]], ["failed", []], ["aborted", []], ["tasks", []]]
    .map(([stage, w]) => m.toneOf(stage, w)),
  labelOf: ["aborted", "running"].map((w) => m.label(w)),
  elapsed: ms.map((x) => m.formatElapsed(x)),
  outputs: m.outputsLine("1 result file (result.csv), 1.2 KB, 250 rows", "job-1"),
  noOutputs: m.outputsLine("", "job-1"),
  rates: JSON.parse(process.argv[3]).map((x) => r.formatRate(x)),
  etas: JSON.parse(process.argv[4]).map((x) => r.formatEta(x)),
}));
"""
RATES = [0.2, 0.5, 0.99, 1.0, 2.75, 12.25, 99.9, 100.0, 2500.0, 0.0]
ETAS = [0.0, 0.04, 3.2, 9.96, 42.0, 61.5, 3599.0, 7322.0]


@pytest.fixture(scope="module")
def js() -> dict[str, Any]:
    if shutil.which("node") is None:
        pytest.skip("node not installed")
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", _DUMP, MONITOR_LOGIC.as_uri(),
         json.dumps(ELAPSED_MS), json.dumps(RATES), json.dumps(ETAS)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_stages_and_their_labels_match(js: dict[str, Any]) -> None:
    assert js["stages"] == list(_view.STAGES)
    assert js["labels"] == _view.STAGE_LABELS
    assert js["endStages"] == list(_view.END_STAGES)


def test_tones_colours_and_labels_match(js: dict[str, Any]) -> None:
    """An abort is neutral grey and a complete job with warnings amber on both sides."""
    assert js["tones"] == _view.COLORS
    cases = [("done", ()), ("done", ("w",)), ("failed", ()), ("aborted", ()), ("tasks", ())]
    assert js["toneOf"] == [_view.tone_of(stage, w) for stage, w in cases]
    assert js["toneOf"] == ["success", "warning", "danger", "neutral", "active"]
    assert js["labelOf"] == [_view.label("aborted"), _view.label("running")]


def test_grid_characters_mean_the_same_task_states(js: dict[str, Any]) -> None:
    assert set(js["grid"]) == set(_view.GRID_CHARS.values())
    for state, char in _view.GRID_CHARS.items():
        word = "done" if state is TaskState.COMPLETE else state.name.lower()
        assert js["grid"][char]["name"] == word, (state, char)


def test_static_outcome_uses_the_cards_colours(js: dict[str, Any]) -> None:
    grid = js["grid"]
    assert (grid["d"]["color"], grid["f"]["color"], grid["r"]["color"]) == (
        _view._OK, _view._BAD, _view._RUN)


def test_elapsed_time_reads_the_same(js: dict[str, Any]) -> None:
    python = [_view.format_elapsed(ms / 1000) for ms in ELAPSED_MS]
    assert js["elapsed"] == python


def test_rate_and_time_left_read_the_same(js: dict[str, Any]) -> None:
    assert js["rates"] == [format_rate(x) for x in RATES]
    assert js["etas"] == [format_eta(x) for x in ETAS]


def test_what_came_out_reads_the_same(js: dict[str, Any]) -> None:
    assert js["outputs"] == _view.outputs_line("1 result file (result.csv), 1.2 KB, 250 rows",
                                               "job-1")
    assert js["noOutputs"] == _view.outputs_line("", "job-1") == ""
