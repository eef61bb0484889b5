"""The package's import rules, checked on the source of every module (imports inside
functions and under ``TYPE_CHECKING`` count too):

* ByteNite Local layers: HTTP -> service -> storage / execution. Execution imports neither
  HTTP, nor service, nor storage; storage imports neither HTTP nor service; the service does
  not import HTTP; none of them imports the composition root (``server.context``).
* An HTTP route module imports no other route module (shared pieces live in ``http/``).
* The client (``bytenite_nb.api``), and everything of the package it imports, never imports
  the server, the notebook layer, IPython or the widget libraries.
* The client and the server share only ``bytenite_nb.wire`` (and the package's version).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import bytenite_nb

ROOT = Path(bytenite_nb.__file__).resolve().parent
SERVER = "bytenite_nb.server"
HTTP, SERVICE, STORAGE, EXECUTION = (f"{SERVER}.{p}" for p in
                                     ("http", "service", "storage", "execution"))
ROUTES = f"{HTTP}.routes"
CONTEXT = f"{SERVER}.context"

#: For modules under each package: the packages they must not import.
LAYERS: dict[str, tuple[str, ...]] = {
    EXECUTION: (HTTP, SERVICE, STORAGE, CONTEXT),
    STORAGE: (HTTP, SERVICE, CONTEXT),
    SERVICE: (HTTP, CONTEXT),
}
#: What the server may import of the rest of the package (the version may move to a module).
SERVER_MAY_USE = {"bytenite_nb", "bytenite_nb.wire", "bytenite_nb._version",
                  "bytenite_nb.version"}
NOT_FOR_THE_CLIENT = (SERVER, "bytenite_nb.notebook", "IPython", "ipywidgets", "anywidget",
                      "traitlets", "ipykernel")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "builtin_apps" in path.parts:  # app folders run as scripts, not package modules
            continue
        found[_module_name(path)] = path
    return found


MODULES = _modules()


def imports_of(source: str, module: str, is_package: bool = False) -> Iterator[str]:
    """Every module ``source`` (of ``module``) imports: ``from a import b`` yields ``a.b``
    when that is a module of this package, else ``a``; relative imports are resolved."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    return set(imports_of(path.read_text(encoding="utf-8"), module,
                          path.name == "__init__.py"))


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _violations(module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {name}" for name in _imports(module)
                  if any(_under(name, f) for f in forbidden))


def test_the_checker_sees_every_kind_of_import() -> None:
    source = ("import os\nfrom . import records\nfrom ..http import errors\n"
              "def f():\n    from bytenite_nb.server.http.app import create_app\n"
              "if TYPE_CHECKING:\n    import IPython\n")
    found = set(imports_of(source, "bytenite_nb.server.storage.store"))
    assert found == {"os", "bytenite_nb.server.storage.records", "bytenite_nb.server.http.errors",
                     "bytenite_nb.server.http.app", "IPython"}
    assert len(MODULES) > 50 and "bytenite_nb.server.http.routes.jobs" in MODULES


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_server_layers_import_only_downwards(package: str) -> None:
    problems = [v for m in MODULES if _under(m, package) for v in _violations(m, LAYERS[package])]
    assert not problems, "\n".join(problems)


def test_route_modules_import_no_other_route_module() -> None:
    problems = [f"{m} imports {name}" for m in MODULES if _under(m, ROUTES) and m != ROUTES
                for name in _imports(m) if _under(name, ROUTES) and name != ROUTES]
    assert not problems, "\n".join(problems)


def test_the_server_shares_only_the_wire_module_with_the_rest_of_the_package() -> None:
    problems = [f"{m} imports {name}" for m in MODULES if _under(m, SERVER)
                for name in _imports(m)
                if _under(name, "bytenite_nb") and not _under(name, SERVER)
                and name not in SERVER_MAY_USE]
    assert not problems, "\n".join(problems)


def test_the_client_never_reaches_the_server_the_notebook_or_widgets() -> None:
    seen: set[str] = set()
    todo = [m for m in MODULES if _under(m, "bytenite_nb.api")]
    problems: list[str] = []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in _imports(module):
            if any(_under(name, f) for f in NOT_FOR_THE_CLIENT):
                problems.append(f"{module} imports {name}")
            elif name in MODULES and name != "bytenite_nb":
                todo.append(name)
    assert not problems, "\n".join(problems)
    assert "bytenite_nb.wire" in seen
