"""The JobForm in real JupyterLab: pick a template, fill it, copy the cell, run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Lab, open_notebook, run_all

pytestmark = pytest.mark.browser

FORM_CELLS = [
    """\
from bytenite_nb.notebook.widgets import JobForm
form = JobForm()  # the client finds ByteNite Local through the kernel's environment
form""",
]


def test_form_fill_copy_and_run(page: Any, lab: Lab, shots: Path) -> None:
    name = lab.write_notebook("form.ipynb", FORM_CELLS)
    open_notebook(page, lab, name)
    run_all(page)
    form = page.locator(".bn-job-form")
    form.wait_for()
    template = "sleepy-template — fan out, sleep, pass through"
    form.locator("select").first.select_option(label=template)
    form.locator(".widget-text:has(label:text-is('Name')) input").fill("from the browser")
    form.locator("button.widget-toggle-button:text-is('bypass')").click()
    # sleepy's schema.json comes with the template: its app params are generated fields (one
    # row per property: bold name, then the input with its message and help under it); the
    # engines without one stay JSON
    seconds = form.locator(".widget-hbox:has(b:text-is('seconds')) input")
    assert seconds.input_value() == "0.3"  # the template's default
    params = form.locator(".widget-textarea:has(label:text-is('Params')) textarea")
    params.fill('{"partitioner": {"chunks": oops}}')
    form.locator("text=params JSON: Expecting value").wait_for()  # message next to the editor
    run = form.locator("button:has-text('Run')")
    assert run.is_disabled()
    params.fill('{"partitioner": {"chunks": 8}}')
    seconds.fill("abc")
    form.locator(".widget-hbox:has(b:text-is('seconds')) .bn-field-error:text-is("
                 "'must be a number')").wait_for()
    assert run.is_disabled()
    seconds.fill("0.1")
    page.wait_for_function(
        "() => !document.querySelector('.bn-job-form button.mod-primary').disabled")
    page.set_viewport_size({"width": 1280, "height": 2000})  # the whole form in view
    # Copy as a cell: on the clipboard, from the click itself.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.url)
    copy = form.locator("button.bn-copy-btn")
    copy.click()
    form.locator(".bn-copy[data-copy='copied']").wait_for()
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.startswith("%%bytenite job") and "templateId: sleepy-template" in text
    assert "source: bypass" in text and "chunks: 8" in text and "seconds: 0.1" in text
    form.screenshot(path=str(shots / "filled.png"))
    # A browser that refuses the clipboard: the cell is shown, selected, with what to do.
    page.evaluate("() => { navigator.clipboard.writeText = () => Promise.reject("
                  "new DOMException('denied', 'NotAllowedError')); }")
    copy.click()
    fallback = form.locator(".bn-copy[data-copy='refused'] textarea.bn-copy-text")
    fallback.wait_for()
    assert fallback.input_value() == text
    assert "NotAllowedError" in form.locator(".bn-copy-why").inner_text()
    assert "Ctrl+C" in form.locator(".bn-copy-why").inner_text()
    assert page.evaluate("document.activeElement.classList.contains('bn-copy-text')")
    form.screenshot(path=str(shots / "copy-refused.png"))
    run.click()
    done = form.locator(".bn-monitor[data-state='complete']")
    done.wait_for()
    assert "8/8 tasks done" in done.inner_text()
    form.screenshot(path=str(shots / "ran.png"))
