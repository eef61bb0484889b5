"""Which standard-library modules an app's entrypoint imports, so its fork server imports
them once instead of every task importing them again.

A fork server ("zygote", see :mod:`.zygote`) that has imported a module hands it, warm, to
every task it forks. Preloading a fixed list is a bad trade: each module a zygote holds makes
every fork and every task's exit slower (its pages are copied and torn down each time),
whether or not the app uses it; a module the app imports but the zygote lacks costs each
task a fresh import. So the executor reads the entrypoint's ``import`` statements (once per
version of the file) and the zygote imports those before it forks the task.

Only standard-library modules are chosen automatically: their import has no side effects
that could leak between tasks or make forking unsafe (no threads started, no output; the
few that do something at import time are excluded). Third-party modules (numpy, pandas...)
are imported in the zygote only when asked for by name (``ForkServerExecutor(preload=...)``,
``bytenite-nb serve --preload``), because some start threads or open devices on import.
"""

from __future__ import annotations

import ast
import os
import sys
import threading

__all__ = ["stdlib_imports"]

# Imports with visible side effects (printing, opening a browser or a window), or that make
# no sense in a fork server; they are left to the task itself.
_EXCLUDED = frozenset({
    "__hello__", "__phello__", "antigravity", "this", "idlelib", "tkinter", "turtle",
    "turtledemo", "pydoc", "pdb", "code", "venv", "ensurepip", "lib2to3", "test", "readline",
})
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) - _EXCLUDED

_cache: dict[str, tuple[tuple[int, int, int], tuple[str, ...]]] = {}
_lock = threading.Lock()
# One ast.parse at a time: CPython (seen on 3.11) keeps the AST converter's recursion counter
# in interpreter-wide state, so two task threads parsing at once can fail with "SystemError:
# AST constructor recursion depth mismatch" (see python/cpython#106905).
_parse_lock = threading.Lock()


def _names(tree: ast.AST) -> list[str]:
    """Absolute module names imported anywhere in ``tree``, in order of appearance."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
    return found


def _local_names(folder: str) -> set[str]:
    """Top-level names importable from ``folder`` (``x.py``, ``x/``, ``x.cpython-….so``)."""
    try:
        with os.scandir(folder) as entries:
            return {entry.name.partition(".")[0] for entry in entries}
    except OSError:
        return set()


def stdlib_imports(script: str | os.PathLike[str],
                   path0: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """The standard-library modules ``script`` imports (``import x.y``, ``from x import y``,
    at any depth), deduplicated, in order; ``()`` when it cannot be read or parsed (the task
    then reports that itself).

    ``path0`` is the task's ``sys.path[0]`` (default: the script's folder). A name the app
    itself provides there (its own ``calendar.py``, say) shadows the standard library's for
    ``python main.py``, so it is never chosen. Cached per file, keyed on the script's
    modification time and size and the folder's modification time.
    """
    path = os.fspath(script)
    folder = os.fspath(path0) if path0 is not None else os.path.dirname(path)
    try:
        st, dst = os.stat(path), os.stat(folder)
    except OSError:
        return ()
    key = (st.st_mtime_ns, st.st_size, dst.st_mtime_ns)
    cache_key = f"{path}\0{folder}"
    with _lock:
        cached = _cache.get(cache_key)
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        with open(path, "rb") as f:
            source = f.read()
        with _parse_lock:
            tree = ast.parse(source, filename=path)
    except (OSError, SyntaxError, ValueError):
        modules: tuple[str, ...] = ()
    else:
        local = _local_names(folder)
        modules = tuple(dict.fromkeys(
            name for name in _names(tree)
            if (top := name.partition(".")[0]) in _STDLIB and top not in local
        ))
    with _lock:
        _cache[cache_key] = (key, modules)
    return modules
