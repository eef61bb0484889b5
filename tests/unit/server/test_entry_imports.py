"""Which modules a fork server warms up for an app, and that doing so changes nothing a task
can observe: its own modules still win, and imports that warn or fail are left to it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bytenite_nb.server.execution.executors import zygote
from bytenite_nb.server.execution.executors.entry_imports import stdlib_imports


def _app(folder: Path, code: str, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    script = folder / "main.py"
    script.write_text(textwrap.dedent(code))
    return script


def test_standard_library_imports_at_any_depth_in_order(tmp_path: Path) -> None:
    script = _app(tmp_path, """\
        import os, json
        from collections import abc
        import numpy                      # third party: never chosen automatically
        from . import sibling             # relative: the app's own
        import this                       # prints the Zen at import: left to the task
        try:
            import xml.etree.ElementTree as ET
        except ImportError:
            ET = None
        def later():
            import csv
            import json                   # (once)
    """)
    assert stdlib_imports(script) == ("os", "json", "collections", "xml.etree.ElementTree",
                                      "csv")


def test_a_module_the_app_provides_itself_is_not_chosen(tmp_path: Path) -> None:
    script = _app(tmp_path, "import calendar, queue, csv\n", **{"calendar.py": "MARK = 1\n"})
    (tmp_path / "queue").mkdir()  # a package (or namespace package) of the app's own
    assert stdlib_imports(script) == ("csv",)


def test_unreadable_or_invalid_scripts_choose_nothing(tmp_path: Path) -> None:
    assert stdlib_imports(tmp_path / "missing.py") == ()
    assert stdlib_imports(_app(tmp_path, "import json\ndef broken(:\n")) == ()


def test_an_edited_script_is_read_again(tmp_path: Path) -> None:
    script = _app(tmp_path, "import json\n")
    assert stdlib_imports(script) == ("json",)
    script.write_text("import csv, json\n")
    later = script.stat().st_mtime_ns + 1_000_000_000  # a coarse clock must not hide it
    os.utime(script, ns=(later, later))
    assert stdlib_imports(script) == ("csv", "json")


def test_imports_that_warn_or_fail_are_left_to_the_task(tmp_path: Path) -> None:
    # In a fresh interpreter: import_for_tasks changes its sys.modules (and freezes its GC).
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "plain_mod.py").write_text("VALUE = 1\n")
    (mods / "warns_mod.py").write_text(
        "import warnings\nwarnings.warn('old', DeprecationWarning)\n")
    (mods / "helper_mod.py").write_text("X = 1\n")
    (mods / "fails_mod.py").write_text("import helper_mod\nraise RuntimeError('no')\n")
    probe = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(mods)!r})
        sys.path.insert(0, {str(Path(zygote.__file__).parent)!r})
        import zygote
        zygote.import_for_tasks(["plain_mod", "warns_mod", "fails_mod", "no_such_mod"])
        print(sorted(m for m in sys.modules if m.endswith("_mod")))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    # The warning was not printed by the zygote: the task prints it when it imports.
    assert out.stderr == ""
    assert out.stdout.strip() == "['plain_mod']"
