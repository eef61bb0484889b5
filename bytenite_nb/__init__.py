"""bytenite-nb: run and analyse ByteNite jobs from Jupyter.

    >>> import bytenite_nb
    >>> client = bytenite_nb.Client()   # key and URL from the environment or config file
    >>> job = client.submit("hello-world-template", source="notes.txt",
    ...                     params={"app": {"case": "upper"}})
    >>> job.wait().load_results()

In IPython or Jupyter: ``%load_ext bytenite_nb``, then ``%bytenite help``.

Heavy modules (pandas, the server, widgets) are imported lazily, so ``import bytenite_nb`` and
``%load_ext bytenite_nb`` stay fast and never touch the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bytenite_nb._version import __version__

__all__ = ["Client", "Job", "__version__", "connect", "load_ipython_extension"]

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.jobs import Job

_LAZY = {
    "Client": ("bytenite_nb.api.client", "Client"),
    "Job": ("bytenite_nb.api.jobs", "Job"),
    "connect": ("bytenite_nb.api.client", "connect"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bytenite_nb' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext bytenite_nb``: registers ``%bytenite`` / ``%%bytenite``."""
    from bytenite_nb.notebook.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext bytenite_nb``."""
    from bytenite_nb.notebook.magics import unload_ipython_extension as _unload

    _unload(ipython)
