"""The ``%bytenite`` verbs, one small module per family; :data:`HANDLERS` maps verb to function.

Every handler takes a :class:`~bytenite_nb.notebook.commands.context.Context` and returns what
the magic returns (displayed by IPython) or ``None``. Modules are imported when a verb first
runs, so ``%load_ext bytenite_nb`` stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.notebook.commands.context import Context

__all__ = ["HANDLERS", "handler_for"]

#: verb -> (module under bytenite_nb.notebook.commands, function name)
HANDLERS: dict[str, tuple[str, str]] = {
    "run": ("jobs", "run"),
    "cell": ("jobs", "cell"),
    "attach": ("jobs", "attach"),
    "job": ("jobs", "job"),
    "status": ("jobs", "status"),
    "abort": ("jobs", "abort"),
    "delete": ("jobs", "delete"),
    "jobs": ("tables", "jobs"),
    "logs": ("tables", "logs"),
    "results": ("tables", "results"),
    "templates": ("tables", "templates"),
    "info": ("info", "info"),
    "client": ("info", "client"),
    "help": ("info", "show_help"),
    "login": ("login", "login"),
    "secrets": ("secrets", "secrets"),
    "local": ("local", "local"),
}


def handler_for(verb: str) -> Callable[[Context], Any]:
    """The function implementing ``verb``."""
    module_name, func = HANDLERS[verb]
    module = importlib.import_module(f"bytenite_nb.notebook.commands.{module_name}")
    return getattr(module, func)
