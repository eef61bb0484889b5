"""Case 13: a key and its server travel together.

With ``BYTENITE_API_KEY`` set for a hosted account and ``%bytenite local`` running, the magics
worked but ``JobForm(template="csv-rows-template")`` failed with ``401 Invalid API key``:
``Client()`` took the key from the environment and the base URL from the running ByteNite
Local. Now a ``Client()`` or widget made in a kernel where the magics chose a server uses that
server and its key, unless told otherwise. ByteNite Local runs as a real background process,
started by the magic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from bytenite_nb.api.errors import AuthenticationError
from bytenite_nb.testing import TestingShell

pytestmark = pytest.mark.slow

HOSTED_KEY = "hosted-account-key-not-for-local-0123"


@pytest.fixture()
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "default-local"))
    monkeypatch.delenv("BYTENITE_BASE_URL", raising=False)
    monkeypatch.setenv("BYTENITE_API_KEY", HOSTED_KEY)  # as for a hosted account
    # The magics share their server with the kernel's current IPython only: this shell must
    # be that one, as a notebook's is (another test may have left a plain singleton behind).
    if InteractiveShell.initialized() and not isinstance(InteractiveShell._instance,
                                                         TestingShell):
        InteractiveShell.clear_instance()
    ip = TestingShell.create()
    assert InteractiveShell._instance is ip
    ip.run_cell(f"%config ByteniteMagics.ledger_path = '{tmp_path / 'ledger.jsonl'}'")
    try:
        yield ip
    finally:
        with contextlib.suppress(UsageError):  # (the test may have stopped it already)
            ip.run_cell("%bytenite local stop")
        ip.run_cell("%unload_ext bytenite_nb")
        ip.dispose()


def test_case13_client_and_widgets_use_the_magics_server_and_its_key(
        shell: TestingShell, tmp_path: Path) -> None:
    shell.run_line_magic("bytenite", f"local --data-dir {tmp_path / 'local'} --workers 1")
    url = shell.run_line_magic("config", "ByteniteMagics.base_url")
    shell.run_cell(
        "from bytenite_nb import Client\n"
        "from bytenite_nb.notebook.widgets import JobForm, JobsDashboard\n"
        "client = Client()\n"
        "form = JobForm(template='csv-rows-template')\n"
        "dashboard = JobsDashboard(live=False)\n"
        "templates = [t.id for t in client.templates()]\n")
    ns = shell.user_ns
    assert ns["client"].base_url == url and "csv-rows-template" in ns["templates"]
    assert "magics" in ns["client"].settings.api_key_source
    assert ns["form"].client.base_url == url and ns["form"].template.value == "csv-rows-template"
    assert ns["dashboard"].client.base_url == url
    ns["dashboard"].close()
    # Told otherwise, the arguments win: the hosted key is refused by this server, as it
    # should be (it was never sent anywhere by Client() alone).
    shell.run_cell(f"from bytenite_nb import Client\nother = Client(api_key='{HOSTED_KEY}', "
                   f"base_url='{url}')")
    with pytest.raises(AuthenticationError):
        next(iter(shell.user_ns["other"].templates()))
    # Once the magics stop using a server, Client() no longer follows them.
    shell.run_line_magic("bytenite", "local stop")
    shell.run_cell("from bytenite_nb import Client\nafter = Client()")
    assert shell.user_ns["after"].base_url != url
