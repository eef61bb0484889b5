"""Real JupyterLab in Debian's Chromium through Playwright (style-and-ecosystem.md, B3).

Never downloads a browser: tests are skipped when /usr/bin/chromium is missing. The server
runs with isolated config/runtime/IPython dirs under a temporary root; the kernel inherits
``BYTENITE_BASE_URL``/``BYTENITE_API_KEY`` of the session's ByteNite Local, so notebooks reach
it without any secret in their source.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kit.servers import TEST_API_KEY, ServerFactory

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test; skip them all without chromium."""
    here = Path(__file__).parent
    skip = None
    if not CHROMIUM.exists():
        skip = pytest.mark.skip(reason="/usr/bin/chromium missing (scripts/ensure-chromium.sh)")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            skip = pytest.mark.skip(reason="playwright (python) not installed")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if skip is not None:
                item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab: its URL, notebook root dir and log file."""

    url: str
    root: Path
    log: Path

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook of code cells into the root; returns its name."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nbformat.write(nb, self.root / name)
        return name


APPS_KEY = TEST_API_KEY


@pytest.fixture(scope="package")
def apps_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """ByteNite Local with the bundled apps plus the standard test apps."""
    from tests.kit.apps import standard_apps

    apps = standard_apps(tmp_path_factory.mktemp("browser-apps"))
    with ServerFactory(tmp_path_factory) as start:
        yield start(workers=2, apps_dirs=(apps,))


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """JupyterLab 4 on a free port, token-less, isolated dirs, kernel env pointing at Local."""
    local_server = request.getfixturevalue("apps_server")
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    for d in (root, settings):
        d.mkdir(parents=True)
    # The "get Jupyter news?" toast would cover our widgets in screenshots.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = _free_port()
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
        PYTHONUNBUFFERED="1",
    )
    env.update(BYTENITE_BASE_URL=local_server.base_url, BYTENITE_API_KEY=APPS_KEY)
    env.pop("BYTENITE_NONINTERACTIVE", None)
    env.pop("BYTENITE_DISPLAY", None)
    log_path = base / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.token=",
        "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
        "--LabApp.expose_app_in_browser=True", f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={base / 'settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
    ]
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start; log:\n{log_path.read_text()}")
            time.sleep(0.3)
        yield Lab(url=url, root=root, log=log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# Package scope, not session: Playwright's sync API keeps an event loop marked as running in
# the main thread while it is started, which would break every later test using asyncio.run().
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture()
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page (1280x900) per test; a full-page screenshot is kept when a test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    try:
        yield pg
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            out = Path(request.config.rootpath) / "test-output" / "browser" / request.node.name
            out.mkdir(parents=True, exist_ok=True)
            pg.screenshot(path=str(out / "failure.png"), full_page=True)
        context.close()


@pytest.fixture()
def shots(request: pytest.FixtureRequest) -> Path:
    """Where a test saves its screenshots: test-output/browser/<test name>/."""
    root = Path(request.config.rootpath) / "test-output" / "browser" / request.node.name
    root.mkdir(parents=True, exist_ok=True)
    return root


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Open a notebook in Lab and wait until its kernel is connected and idle."""
    # `?reset` drops the saved workspace: otherwise Lab reopens earlier tests' notebooks and
    # "the current widget" may be one of them.
    page.goto(f"{lab.url}/lab/tree/{name}?reset")
    page.wait_for_function(
        "(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.context && w.context.path === name && w.sessionContext"
        " && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.connectionStatus === 'connected' && k.status === 'idle'; }",
        arg=name,
        timeout=90_000,
    )


def run_all(page: Any) -> None:
    """Run every cell (galata's hook: the app's command registry)."""
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")


def save(page: Any) -> None:
    """Save the current notebook and wait for the save to finish."""
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.context && !w.context.model.dirty; }"
    )
