"""Finding and looking, in real JupyterLab, light and dark: Tab completion's popup, a
template's description, a task timeline, and a live monitor with its rate and time left.

Screenshots land in test-output/browser/<test name>/ (``*-light.png``, ``*-dark.png``).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Lab, open_notebook, run_all

pytestmark = pytest.mark.browser

THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}


@pytest.fixture()
def themed(page: Any) -> Iterator[Any]:
    """The page; JupyterLab is back on its light theme afterwards (the theme is a user
    setting of the shared server, and other tests' screenshots expect the default)."""
    yield page
    # The page may be gone after a failure: then there is nothing more to restore.
    with contextlib.suppress(Exception):
        set_theme(page, "light")


def set_theme(page: Any, theme: str) -> None:
    """Switch JupyterLab's theme and wait until it is applied."""
    light = "true" if theme == "light" else "false"
    page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', "
                  f"{{theme: '{THEMES[theme]}'}})")
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached")
    page.wait_for_timeout(300)  # let the theme's stylesheet settle before a screenshot


def coloured_pixels(page: Any, png: bytes, rgb: tuple[int, int, int], tolerance: int = 24) -> int:
    """How many pixels of a PNG are close to ``rgb`` (decoded by the browser's canvas)."""
    return int(page.evaluate(
        """async ([data, rgb, tol]) => {
            const blob = await (await fetch(`data:image/png;base64,${data}`)).blob();
            const img = await createImageBitmap(blob);
            const canvas = new OffscreenCanvas(img.width, img.height);
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0);
            const px = ctx.getImageData(0, 0, img.width, img.height).data;
            let n = 0;
            for (let i = 0; i < px.length; i += 4) {
                if (Math.abs(px[i] - rgb[0]) <= tol && Math.abs(px[i + 1] - rgb[1]) <= tol
                    && Math.abs(px[i + 2] - rgb[2]) <= tol) n++;
            }
            return n;
        }""",
        [base64.b64encode(png).decode("ascii"), list(rgb), tolerance],
    ))


def last_cell_editor(page: Any) -> Any:
    """The editor of the notebook's last cell, focused."""
    editor = page.locator(".jp-Notebook .jp-Cell").last.locator(".cm-content")
    editor.click()
    return editor


COMPLETION_CELLS = ["%load_ext bytenite_nb", "%bytenite templates", ""]


def test_completion_popup_offers_verbs_and_template_ids(themed: Any, lab: Lab,
                                                       shots: Path) -> None:
    page = themed
    name = lab.write_notebook("complete.ipynb", COMPLETION_CELLS)
    open_notebook(page, lab, name)
    run_all(page)
    page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
    popup = page.locator(".jp-Completer")
    for theme in ("light", "dark"):
        set_theme(page, theme)
        editor = last_cell_editor(page)
        page.keyboard.press("Control+a")
        page.keyboard.press("Backspace")
        editor.type("%bytenite r")
        page.keyboard.press("Tab")
        popup.wait_for(state="visible")
        items = popup.locator(".jp-Completer-item .jp-Completer-match").all_inner_texts()
        assert sorted(items) == ["results", "run"], items
        kinds = popup.locator(".jp-Completer-item .jp-Completer-typeExtended").all_inner_texts()
        assert set(kinds) == {"verb"}, kinds
        page.screenshot(path=str(shots / f"verbs-{theme}.png"),
                        clip=_around(page, ".jp-Notebook .jp-Cell >> nth=-1", popup))
        page.keyboard.press("Escape")
        # A template position: ids from the cache %bytenite templates just filled.
        page.keyboard.press("End")
        editor.type("un csv")
        page.keyboard.press("Tab")
        popup.wait_for(state="visible")
        assert popup.locator(".jp-Completer-item .jp-Completer-match").all_inner_texts() == [
            "csv-rows-template"]
        page.screenshot(path=str(shots / f"templates-{theme}.png"),
                        clip=_around(page, ".jp-Notebook .jp-Cell >> nth=-1", popup))
        page.keyboard.press("Enter")
        cell = page.locator(".jp-Notebook .jp-Cell").last
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook .jp-Cell:last-child .cm-content')"
            ".textContent.includes('csv-rows-template')")
        assert "%bytenite run csv-rows-template" in cell.locator(".cm-content").inner_text()
        editor.type(" --p")
        page.keyboard.press("Tab")
        popup.wait_for(state="visible")
        flags = popup.locator(".jp-Completer-item .jp-Completer-match").all_inner_texts()
        assert sorted(flags) == ["--param", "--params", "--progress-after"], flags
        page.screenshot(path=str(shots / f"flags-{theme}.png"),
                        clip=_around(page, ".jp-Notebook .jp-Cell >> nth=-1", popup))
        page.keyboard.press("Escape")


def _around(page: Any, cell_selector: str, popup: Any) -> dict[str, float]:
    """A clip rectangle holding the cell and the completion popup under it."""
    cell = page.locator(cell_selector).bounding_box()
    box = popup.bounding_box()
    x0, y0 = min(cell["x"], box["x"]), min(cell["y"], box["y"])
    x1 = max(cell["x"] + cell["width"], box["x"] + box["width"])
    y1 = max(cell["y"] + cell["height"], box["y"] + box["height"])
    return {"x": x0, "y": y0, "width": min(x1 - x0, 1200), "height": y1 - y0 + 8}


LOOK_CELLS = [
    "%load_ext bytenite_nb",
    "%bytenite template csv-rows-template",
    """\
import tempfile
from bytenite_nb import Client
client = Client()  # BYTENITE_BASE_URL / BYTENITE_API_KEY from the kernel's environment
done = client.submit(
    "sleepy-template", source="bypass", name="timeline",
    params={"partitioner": {"chunks": 14},
            "app": {"seconds": 0.25, "flaky_chunk": 4, "flaky_dir": tempfile.mkdtemp(),
                    "slow_chunk": 9, "slow_seconds": 1.2}},
    config={"maxTaskRetries": 1}).wait()
done.timeline()""",
    """\
paced = client.submit("sleepy-template", source="bypass", name="paced",
                      params={"partitioner": {"chunks": 80}, "app": {"seconds": 0.35}})
paced""",
]


def test_template_help_timeline_and_a_monitor_with_rate_and_eta(themed: Any, lab: Lab,
                                                               shots: Path) -> None:
    page = themed
    name = lab.write_notebook("look.ipynb", LOOK_CELLS)
    open_notebook(page, lab, name)
    run_all(page)
    # The monitor of the running job: rate and time left once a few tasks have finished.
    monitor = page.locator(".bn-monitor[data-stage='tasks']")
    monitor.wait_for()
    pace = monitor.locator(".bn-pace")
    page.wait_for_function(
        "() => /tasks\\/s|s\\/task/.test(document.querySelector('.bn-monitor .bn-pace')"
        "?.textContent || '') && /left/.test(document.querySelector('.bn-monitor .bn-pace')"
        ".textContent)")
    assert "left" in pace.inner_text()
    for theme in ("light", "dark"):
        set_theme(page, theme)
        monitor.screenshot(path=str(shots / f"monitor-rate-eta-{theme}.png"))

    template = page.locator(".bn-template[data-template='csv-rows-template']")
    template.wait_for()
    assert template.locator("tr.bn-param").count() == 12
    assert "Fans a CSV/TSV" in template.inner_text()
    timeline = page.locator("svg.bn-timeline")
    timeline.wait_for()
    assert timeline.locator("rect.bn-retried").count() == 1
    assert timeline.locator("rect.bn-straggler").count() >= 1
    assert timeline.locator("rect.bn-task").count() == 15  # 14 tasks, one tried twice
    page.set_viewport_size({"width": 1280, "height": 2400})  # the whole description in view
    for theme in ("light", "dark"):
        set_theme(page, theme)
        template.scroll_into_view_if_needed()
        template.screenshot(path=str(shots / f"template-help-{theme}.png"))
        timeline.scroll_into_view_if_needed()
        png = timeline.screenshot(path=str(shots / f"timeline-{theme}.png"))
        # The screenshot shows bars: completed green, the retried attempt amber.
        assert coloured_pixels(page, png, (0x2D, 0xA4, 0x4E)) > 2000
        assert coloured_pixels(page, png, (0xD4, 0xA7, 0x2C)) > 50
    # The finished monitor's outcome offers the same timeline, folded.
    page.locator(".bn-monitor-static[data-state='complete']").wait_for(timeout=120_000)
    toggle = page.locator("details.bn-timeline-toggle").last
    toggle.locator("summary").click()
    assert toggle.locator("svg.bn-timeline rect.bn-task").count() == 80
