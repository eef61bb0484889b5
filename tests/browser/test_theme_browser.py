"""Case 12: the job's views are readable in JupyterLab Dark as in Light.

In JupyterLab Dark the ``--wait`` progress track was hard-coded light grey and the job-id
chip of the finished and ``--wait`` views had a contrast of about 1.5:1. This test runs a
``--wait`` job in real JupyterLab in each theme, measures in the browser the contrast of the
job chip and of the progress text (the task counts) against what is really behind them
(WCAG's formula, >= 4.5:1 for text), on the live progress view, the live monitor and the
finished outcome, and saves screenshots of both themes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Lab, open_notebook

pytestmark = pytest.mark.browser

THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}

CELLS = [
    "%load_ext bytenite_nb",
    # --wait with progress at once: the progress view (static HTML, updated in place) shows
    # while the kernel blocks; the cell's result is then the monitor, then the outcome.
    "%bytenite run sleepy-template --source bypass --name themed --param partitioner.chunks=6 "
    "--param seconds=1.5 --wait --progress-after 0 -o themed",
    # A job left running: its live widget card.
    "%bytenite run sleepy-template --source bypass --name themed-live "
    "--param partitioner.chunks=2 --param seconds=300 -o live",
]

#: Contrast of an element's text against the colour really behind it (WCAG 2 relative
#: luminance; semi-transparent colours are composited over what is under them).
CONTRAST_JS = """
(el) => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, under) => ({
    r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
    b: top.b * top.a + under.b * (1 - top.a), a: 1 });
  // What is behind el: the backgrounds of el and its ancestors, composited bottom-up.
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const bg = parse(getComputedStyle(n).backgroundColor);
    if (bg && bg.a > 0) layers.push(bg);
    if (bg && bg.a >= 1) break;
  }
  let back = { r: 255, g: 255, b: 255, a: 1 };
  if (layers.length && layers[layers.length - 1].a >= 1) back = layers.pop();
  for (const layer of layers.reverse()) back = over(layer, back);
  const fg = over(parse(getComputedStyle(el).color), back);
  const lum = (c) => {
    const ch = [c.r, c.g, c.b].map((v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const [hi, lo] = [lum(fg), lum(back)].sort((a, b) => b - a);
  return { ratio: (hi + 0.05) / (lo + 0.05), fg: getComputedStyle(el).color,
           text: el.textContent.trim().slice(0, 60) };
}
"""


def _set_theme(page: Any, name: str) -> None:
    page.evaluate("(t) => window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: t})", name)
    light = "true" if "Light" in name else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    page.wait_for_timeout(500)  # the theme's stylesheet applies after the attribute flips


def _readable(page: Any, selector: str, what: str) -> dict[str, Any]:
    element = page.locator(selector).first
    element.wait_for()
    measured = element.evaluate(CONTRAST_JS)
    assert measured["ratio"] >= 4.5, f"{what}: {measured}"
    return measured


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_case12_job_views_are_readable_in_light_and_dark(page: Any, lab: Lab, shots: Path,
                                                         theme: str) -> None:
    name = lab.write_notebook(f"theme-{theme}.ipynb", CELLS)
    open_notebook(page, lab, name)
    _set_theme(page, THEMES[theme])
    try:
        # Start every cell without awaiting the command: its promise resolves only once the
        # cells ran, and the --wait view is gone by then.
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        # 1. The --wait progress view, while the kernel waits.
        progress = ".jp-OutputArea-output .bn-monitor-static[data-stage='tasks']"
        page.wait_for_selector(progress)
        measured = {
            "wait chip": _readable(page, f"{progress} code", "job chip of the --wait view"),
            "wait counts": _readable(page, f"{progress} .bn-counts", "--wait progress text"),
        }
        track = page.locator(f"{progress} > div:nth-child(3)").first.evaluate(
            "(el) => getComputedStyle(el).backgroundColor")
        page.locator(progress).first.screenshot(path=str(shots / f"wait-{theme}.png"))
        # 2. The finished job: the outcome replaces the monitor.
        done = ".jp-OutputArea-output .bn-monitor-static[data-state='complete']"
        page.wait_for_selector(done, timeout=120_000)
        measured["outcome chip"] = _readable(page, f"{done} code", "job chip of the outcome")
        measured["outcome counts"] = _readable(page, f"{done} .bn-counts",
                                               "task counts of the outcome")
        page.locator(done).first.screenshot(path=str(shots / f"outcome-{theme}.png"))
        # 3. The live monitor of a running job.
        live = ".bn-monitor[data-state='running']"
        page.wait_for_selector(live, timeout=120_000)
        measured["monitor chip"] = _readable(page, f"{live} .bn-id", "job chip of the monitor")
        measured["monitor counts"] = _readable(page, f"{live} .bn-counts",
                                               "task counts of the monitor")
        page.locator(live).first.screenshot(path=str(shots / f"monitor-{theme}.png"))
        page.screenshot(path=str(shots / f"notebook-{theme}.png"), full_page=True)
        (shots / f"contrast-{theme}.txt").write_text(
            "\n".join(f"{k}: {v['ratio']:.2f} ({v['fg']})" for k, v in measured.items())
            + f"\nprogress track: {track}\n")
        if theme == "dark":  # the track follows the theme instead of staying light grey
            assert track != "rgb(240, 240, 240)", track
        page.locator(".bn-monitor .bn-abort").first.click()
        page.wait_for_selector(".bn-monitor-static[data-state='aborted']")
    finally:
        _set_theme(page, THEMES["light"])
