"""Test helpers for code that uses the ``%bytenite`` magics (ours, and yours).

:class:`TestingShell` is an IPython ``InteractiveShell`` for pytest: ``run_cell`` re-raises the
cell's exception (so a failing magic fails the test), and history is kept in memory only (a
history database per test would leak file handles and touch the home directory)::

    from bytenite_nb.testing import TestingShell

    def test_jobs(tmp_path):
        ip = TestingShell.create()            # %load_ext bytenite_nb already done
        ip.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:8765'")
        df = ip.run_line_magic("bytenite", "jobs --limit 5")

Nothing here is a fake: the shell runs real cells, and the magics talk to whatever server the
configuration points at (use ``bytenite_nb.local.LocalServer`` for a real ByteNite Local).
"""

from __future__ import annotations

import atexit
from typing import Any

from IPython.core.interactiveshell import ExecutionResult, InteractiveShell
from traitlets.config import Config

__all__ = ["TestingShell"]


class TestingShell(InteractiveShell):
    """An ``InteractiveShell`` whose ``run_cell`` raises the cell's exception, history off."""

    __test__ = False  # not a pytest test class, despite the name

    def run_cell(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Run a cell like IPython does (output, ``UsageError`` line), then re-raise its error."""
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result

    @classmethod
    def create(cls, *, load_extension: bool = True, config: Config | None = None) -> TestingShell:
        """A fresh shell with ``bytenite_nb`` loaded (by default).

        It becomes the process's current IPython (``get_ipython()``, and what ``display()``
        publishes through, exactly as in a session) unless a real, non-testing IPython is
        already running here, which is left alone.
        """
        cfg = Config()
        cfg.HistoryManager.hist_file = ":memory:"
        cfg.HistoryAccessor.enabled = False
        if config is not None:
            cfg.merge(config)
        current = InteractiveShell._instance if InteractiveShell.initialized() else None
        if current is None or isinstance(current, TestingShell):
            cls.clear_instance()
            shell = cls.instance(config=cfg)
        else:
            shell = cls(config=cfg)
        # IPython registers every shell's exit clean-up (a reset with a full gc.collect()); a
        # test session makes hundreds of shells, whose clean-ups then cost a minute at exit
        # and keep nothing (the history is in memory).
        atexit.unregister(shell.atexit_operations)
        if load_extension:
            shell.run_cell("%load_ext bytenite_nb")
        return shell

    def dispose(self) -> None:
        """Stop being the process's current IPython (call it when a test is done with it)."""
        if InteractiveShell.initialized() and InteractiveShell._instance is self:
            type(self).clear_instance()
