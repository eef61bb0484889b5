"""The data dir belongs to its user alone: folder 0700, files 0600.

It holds the API key, the secrets' database, uploaded inputs, results and the user cache,
so no other user of the machine may read any of it, whatever the umask. Three parts:

* a ``bytenite-nb serve`` process (what ``LocalServer.start()`` and ``%bytenite local``
  run) sets its umask to 0077 (`PRIVATE_UMASK`), so everything it creates is private;
* task processes get the same umask from their executor (the fork server, or the
  subprocess executor's ``Popen(umask=...)``), so what apps write is private too;
* files the server writes itself are created 0600 (`open_private`, `copy_private`), so a
  server running on a thread of another process (``in_process=True``, which must not
  change that process's umask) keeps them private as well; its folders follow that
  process's umask, inside a data dir no one else may enter.

`secure_data_dir` creates the data dir 0700 and, when an existing one is open to others
(made by an earlier version), makes it and everything in it private, saying so.

This module sits at the top of the package, beside `config`, because every layer uses it.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import IO, Any

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "PRIVATE_UMASK",
    "copy_private",
    "make_tree_private",
    "open_private",
    "secure_data_dir",
]

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: The umask of a server process and of every task: nothing for group or others.
PRIVATE_UMASK = 0o077


def open_private(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, creating the file 0600 from its first byte (an
    existing file keeps its mode)."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if "a" in mode else os.O_TRUNC
    return os.fdopen(os.open(path, flags, PRIVATE_FILE), mode, **kwargs)


def copy_private(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Copy ``src``'s bytes to a new file ``dst`` (replaced if there), created 0600."""
    with open(src, "rb") as source, open_private(dst, "wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)


def make_tree_private(root: Path) -> int:
    """Take group and other permissions off ``root`` and everything in it (symbolic links are
    neither followed nor changed); returns how many files and folders changed."""
    changed = 0
    for here, dirs, files in os.walk(root):
        for name in (here, *(os.path.join(here, n) for n in (*dirs, *files))):
            try:
                mode = os.lstat(name).st_mode
                if stat.S_ISLNK(mode) or not mode & 0o077:
                    continue
                os.chmod(name, stat.S_IMODE(mode) & ~0o077)
                changed += 1
            except OSError:
                continue  # gone meanwhile, or not ours: nothing to do about it here
    return changed


def secure_data_dir(data_dir: Path) -> int:
    """Create ``data_dir`` 0700, or make an existing one private if it is open to others
    (then everything in it too). Returns how many files and folders were changed."""
    data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if not stat.S_IMODE(data_dir.stat().st_mode) & 0o077:
        return 0
    return make_tree_private(data_dir)
