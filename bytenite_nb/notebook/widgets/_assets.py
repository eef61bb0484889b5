"""Find the widgets' ES modules and CSS, in a wheel or in a source checkout.

The wheel carries ``js/`` as ``bytenite_nb/static/`` (hatch ``force-include``). Editable installs
do not apply ``force-include``, so we fall back to ``<repo>/js/``. Nobody needs node or npm.

anywidget loads ``_esm`` from a ``blob:`` URL, where relative imports such as
``import {x} from "./monitor_logic.js"`` cannot resolve. Keeping the pure logic in its own
module matters (``node --test`` covers it), so :func:`esm_source` inlines local imports:
a twelve-line "bundler" instead of a node toolchain.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent.parent  # bytenite_nb/
_CANDIDATES = (_PACKAGE_DIR / "static", _PACKAGE_DIR.parent / "js")

# `import { a, b } from "./file.js";` (possibly over several lines). Only local files.
_LOCAL_IMPORT = re.compile(r"""^import\s*\{[^}]*\}\s*from\s*["']\./([\w.-]+\.js)["'];?[ \t]*$""",
                           re.MULTILINE)


class AssetNotFoundError(FileNotFoundError):
    """A widget asset is missing from both the installed package and the source tree."""


def asset_dir() -> Path:
    """The directory holding the widget assets (``bytenite_nb/static`` or ``<repo>/js``)."""
    for candidate in _CANDIDATES:
        if (candidate / "monitor.js").is_file():
            return candidate
    searched = ", ".join(str(c) for c in _CANDIDATES)
    raise AssetNotFoundError(
        f"bytenite-nb widget assets not found (looked in {searched}); reinstall bytenite-nb"
    )


def asset_path(name: str) -> Path:
    """Path of one asset file, e.g. ``asset_path("monitor.js")``."""
    path = asset_dir() / name
    if not path.is_file():
        raise AssetNotFoundError(f"widget asset {name!r} not found in {path.parent}")
    return path


def _inline(name: str, seen: set[str]) -> str:
    if name in seen:
        return ""
    seen.add(name)
    text = asset_path(name).read_text(encoding="utf-8")
    deps: list[str] = []

    def _drop(match: re.Match[str]) -> str:
        deps.append(match.group(1))
        return ""

    body = _LOCAL_IMPORT.sub(_drop, text)
    inlined = "".join(_inline(dep, seen) for dep in deps)
    return f"{inlined}// ---- {name} ----\n{body}\n"


@cache
def esm_source(name: str) -> str:
    """One self-contained ES module: ``name`` with its ``./*.js`` imports inlined first."""
    return _inline(name, set())


@cache
def css_source(name: str = "bytenite.css") -> str:
    """The text of a stylesheet."""
    return asset_path(name).read_text(encoding="utf-8")
