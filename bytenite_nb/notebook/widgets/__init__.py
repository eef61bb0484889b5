"""ByteNite widgets: JobMonitor, JobsDashboard, JobForm, LoginWidget (imported lazily)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["JobForm", "JobMonitor", "JobsDashboard", "LoginWidget"]

_LAZY = {
    "JobMonitor": "bytenite_nb.notebook.widgets.monitor",
    "JobsDashboard": "bytenite_nb.notebook.widgets.dashboard",
    "JobForm": "bytenite_nb.notebook.widgets.form",
    "LoginWidget": "bytenite_nb.notebook.widgets.login",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
