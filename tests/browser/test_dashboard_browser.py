"""The JobsDashboard in real JupyterLab: rows, filter, live update, a row action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Lab, open_notebook, run_all

pytestmark = pytest.mark.browser

CELLS = [
    """\
from bytenite_nb import Client
from bytenite_nb.notebook.widgets import JobsDashboard
client = Client()
for i in range(3):
    client.submit("sleepy-template", source="bypass", name=f"dash-{i}",
                  params={"partitioner": {"chunks": 2}, "app": {"seconds": 0}}).wait()
dash = JobsDashboard(client, page_size=5)
dash""",
    """\
late = client.submit("sleepy-template", source="bypass", name="dash-late",
                     params={"partitioner": {"chunks": 4}, "app": {"seconds": 0.5}})""",
]


def test_dashboard_lists_filters_and_updates_live(page: Any, lab: Lab, shots: Path) -> None:
    name = lab.write_notebook("dashboard.ipynb", CELLS)
    open_notebook(page, lab, name)
    run_all(page)
    table = page.locator(".bn-dashboard")
    table.wait_for()
    # The job submitted after the dashboard shows up and turns COMPLETE from events alone.
    late = page.locator(".bn-dash-table tr:has(td.bn-name:text-is('dash-late'))")
    late.locator("td.bn-state:text-is('COMPLETE')").wait_for()
    table.screenshot(path=str(shots / "dashboard.png"))
    page.locator(".bn-dash-bar select").first.select_option("complete")
    page.wait_for_function(
        "() => { const states = [...document.querySelectorAll('.bn-dash-table td.bn-state')];"
        " return states.length > 0 && states.every(td => td.textContent === 'COMPLETE'); }")
    # the filtered table still lists the four jobs, all of them COMPLETE
    names = page.locator(".bn-dash-table td.bn-name").all_text_contents()
    assert {"dash-0", "dash-1", "dash-2", "dash-late"} <= set(names), names
    late.locator("button.bn-act-logs").click()
    page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
    page.locator(".jp-Cell").first.screenshot(path=str(shots / "logs-action.png"))
