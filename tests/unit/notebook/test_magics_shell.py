"""The magics in a real IPython shell, for everything that needs no server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from IPython.core.error import UsageError
from traitlets import TraitError

from bytenite_nb.notebook.commands.context import Context
from bytenite_nb.notebook.grammar import parse_line
from bytenite_nb.notebook.magics import ByteniteMagics
from bytenite_nb.testing import TestingShell


@pytest.fixture()
def ip() -> Iterator[TestingShell]:
    shell = TestingShell.create()
    yield shell
    shell.dispose()


def _magics(ip: TestingShell) -> ByteniteMagics:
    return ip.magics_manager.registry["ByteniteMagics"]


def test_load_ext_is_light_and_offline() -> None:
    code = textwrap.dedent("""
        import socket, sys
        def refuse(*a, **k):
            raise AssertionError("network touched while loading")
        socket.socket.connect = refuse
        from bytenite_nb.testing import TestingShell
        ip = TestingShell.create()
        ip.run_cell("%bytenite help")
        heavy = [m for m in ("requests", "pandas", "bytenite_nb.api.client",
                             "bytenite_nb.server", "bytenite_nb.local", "ipywidgets")
                 if m in sys.modules]
        print("HEAVY", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY []" in out


def test_config_traits_are_validated(ip: TestingShell) -> None:
    magics = _magics(ip)
    ip.run_cell("%config ByteniteMagics.base_url = 'http://h:1/'")
    assert magics.base_url == "http://h:1"
    with pytest.raises(TraitError, match="http"):
        magics.base_url = "ftp://h"
    with pytest.raises(TraitError):
        magics.display_limit = -1
    with pytest.raises(TraitError):
        magics.poll_interval = 0
    with pytest.raises(TraitError):
        magics.credential_store = "paper"
    assert magics.local_idle_timeout == 3600
    ip.run_cell("%config ByteniteMagics.local_idle_timeout = 0")
    assert magics.local_idle_timeout == 0
    for bad in (-1, float("nan")):
        with pytest.raises(TraitError, match="local_idle_timeout must be 0"):
            magics.local_idle_timeout = bad


def test_a_flag_beats_config(ip: TestingShell) -> None:
    magics = _magics(ip)
    ip.run_cell("%config ByteniteMagics.wait = True")
    ip.run_cell("%config ByteniteMagics.progress_after = 7")
    flagged = Context(magics, parse_line("run t --no-wait --progress-after 0"))
    assert flagged.option("wait") is False
    assert flagged.option("progress_after") == 0
    plain = Context(magics, parse_line("run t"))
    assert plain.option("wait") is True
    assert plain.option("progress_after") == 7
    ip.run_cell("%config ByteniteMagics.base_url = 'http://configured:1'")
    assert Context(magics, parse_line("jobs --base-url http://flag:2")).base_url() == (
        "http://flag:2"
    )
    assert Context(magics, parse_line("jobs")).base_url() == "http://configured:1"


def test_help(ip: TestingShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell("%bytenite")
    out = capsys.readouterr().out
    for verb in ("run", "jobs", "attach", "login", "local"):
        assert f"  {verb}" in out
    ip.run_cell("%bytenite run --help")
    assert "--progress-after SECONDS" in capsys.readouterr().out
    ip.run_cell("%%bytenite --help\ntemplateId: t\n")
    assert "%%bytenite" in capsys.readouterr().out
    with pytest.raises(UsageError, match="Did you mean 'logs'"):
        ip.run_cell("%bytenite help lgos")


def test_usage_errors_print_one_line(ip: TestingShell, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError):
        ip.run_cell("%bytenite run")
    err = capsys.readouterr().err
    assert err.startswith("UsageError: %bytenite run: the following arguments are required")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cell_errors_before_any_request(ip: TestingShell) -> None:
    ip.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:9'")
    with pytest.raises(UsageError, match="the cell is empty"):
        ip.run_cell("%%bytenite job\n\n")
    with pytest.raises(UsageError, match="templateId is required"):
        ip.run_cell("%%bytenite job\nname: x\n")
    with pytest.raises(UsageError, match="Refusing an API key"):
        ip.run_cell("%%bytenite job --token abc\ntemplateId: t\n")


def test_dry_run_needs_no_server(ip: TestingShell) -> None:
    ip.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:9'")
    ip.user_ns["casing"] = "upper"
    ip.run_cell("%%bytenite --dry-run -o spec\ntemplateId: t\nparams: {case: $casing}\n")
    # A param without a section is shown as given: its section is known at submit time.
    assert ip.user_ns["spec"] == {"templateId": "t", "params": {"case": "upper"}}
    ip.run_cell("spec2 = %bytenite run t --param case=$casing --dry-run")
    assert ip.user_ns["spec2"] == {"templateId": "t", "params": {"case": "upper"}}


def test_ipython_does_not_expand_variables_on_the_line(ip: TestingShell) -> None:
    # @no_var_expand: `$p` reaches the magic as text and becomes the dict itself, not its str.
    ip.user_ns["p"] = {"app": {"text": "a b {c}"}}
    spec = ip.run_line_magic("bytenite", "run t --params $p --dry-run")
    assert spec["params"] == {"app": {"text": "a b {c}"}}


def test_reload_extension(ip: TestingShell) -> None:
    ip.run_cell("%reload_ext bytenite_nb")
    assert "bytenite" in ip.magics_manager.magics["line"]
    ip.run_cell("%unload_ext bytenite_nb")
    assert "bytenite" not in ip.magics_manager.magics["line"]
    assert "ByteniteMagics" not in ip.magics_manager.registry


def test_ipython_config_file_values_apply() -> None:
    # What `c.ByteniteMagics.wait = True` in ipython_config.py does: config on the shell.
    from traitlets.config import Config

    config = Config()
    config.ByteniteMagics.wait = True
    config.ByteniteMagics.progress_after = 5.0
    shell = TestingShell.create(config=config)
    try:
        magics = _magics(shell)
        assert magics.wait is True and magics.progress_after == 5.0
        assert Context(magics, parse_line("run t --no-wait")).option("wait") is False
    finally:
        shell.dispose()


def test_lazy_magics_autoload(capsys: pytest.CaptureFixture[str]) -> None:
    # `c.MagicsManager.lazy_magics = {"bytenite": "bytenite_nb"}`: no %load_ext needed.
    from traitlets.config import Config

    config = Config()
    config.MagicsManager.lazy_magics = {"bytenite": "bytenite_nb"}
    shell = TestingShell.create(load_extension=False, config=config)
    try:
        shell.run_cell("%bytenite help")
        assert "run and inspect ByteNite jobs" in capsys.readouterr().out
    finally:
        shell.dispose()


def test_testing_shells_leave_no_exit_clean_up_behind() -> None:
    # IPython's exit clean-up of every shell (a reset and a full gc.collect()) made the test
    # session's exit take a minute; a TestingShell has nothing to clean up at exit. Each clean-up
    # that runs at exit says so here; the plain shell's is there to show they would.
    script = textwrap.dedent("""
        from IPython.core.interactiveshell import InteractiveShell
        from bytenite_nb.testing import TestingShell
        InteractiveShell.atexit_operations = lambda self: print("clean-up of", type(self).__name__)
        for _ in range(3):
            TestingShell.create(load_extension=False).dispose()
        InteractiveShell()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.splitlines() == ["clean-up of InteractiveShell"]
