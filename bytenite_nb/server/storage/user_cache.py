"""The caches: the folders every job's processes see as ``USER_CACHE_DIR`` and
``SHARED_CACHE_DIR``.

``<data dir>/cache/user`` persists across jobs; apps read and write it, and the Developer API
pre-fills it: ``GET /v1/dev/cache/upload-url?path=models/w.bin`` answers a URL, and a PUT of
the raw bytes to that URL stores ``USER_CACHE_DIR/models/w.bin`` (see ``docs/local-server.md``).
``<data dir>/cache/shared`` is read-only for apps (as on ByteNite, where it holds what every
job may read, such as model weights) and filled the same way with ``&shared=true``; the same
class serves both (``UserCache(data_dir, shared=True)``).

An upload is streamed to ``<data dir>/cache/.incoming`` and renamed into place, so a job never
sees half a file. Paths are relative, ``/``-separated and checked by `check_path`; the file
system is never followed through a symbolic link an app may have left in the cache.
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import re
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bytenite_nb import wire
from bytenite_nb.server.private import copy_private

__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "CacheError", "UserCache", "check_path"]

#: Longest accepted path (UTF-8 bytes), and longest file or folder name in it.
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EXAMPLE = "e.g. models/w.bin"


class CacheError(Exception):
    """A request about the user cache that cannot be honoured: HTTP ``status`` and a message
    naming the problem and the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _shown(path: str) -> str:
    return repr(path if len(path) <= 80 else path[:80] + "…")


def check_path(path: Any, where: str = "USER_CACHE_DIR") -> str:
    """``path`` if it names a file inside ``where`` (``USER_CACHE_DIR``), else `CacheError`
    (400).

    Relative, ``/``-separated, no empty, ``.`` or ``..`` segments, no NUL or other control
    characters, no ``\\``, at most `MAX_PATH_BYTES` bytes and `MAX_NAME_BYTES` per name.
    """
    def bad(message: str) -> CacheError:
        return CacheError(400, message)

    if not isinstance(path, str) or not path.strip():
        raise bad(f"path is empty: give the file's path inside {where}, "
                  f"{_EXAMPLE}")
    if "\x00" in path:
        raise bad("path contains a NUL character: use printable characters only, "
                  f"{_EXAMPLE}")
    if _CONTROL.search(path):
        raise bad("path contains a control character (a newline, tab, ...): use printable "
                  f"characters only, {_EXAMPLE}")
    if path.startswith("/"):
        raise bad(f"path {_shown(path)} is absolute: give it relative to {where}, "
                  f"without the leading '/', {_EXAMPLE}")
    if "\\" in path:
        raise bad(f"path {_shown(path)} contains '\\': separate folders with '/', {_EXAMPLE}")
    try:
        size = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise bad("path is not valid UTF-8 text: use printable characters only, "
                  f"{_EXAMPLE}") from None
    if size > MAX_PATH_BYTES:
        raise bad(f"path is {size} bytes long (UTF-8); at most {MAX_PATH_BYTES} are accepted: "
                  "use shorter folder or file names")
    parts = path.split("/")
    if "" in parts:
        raise bad(f"path {_shown(path)} has an empty name ('//', or a '/' at the end): name "
                  f"the file, {_EXAMPLE}")
    if any(part in (".", "..") for part in parts):
        raise bad(f"path {_shown(path)} contains '.' or '..': it must name a file inside "
                  f"{where}, {_EXAMPLE}")
    for part in parts:
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise bad(f"the name {_shown(part)} in path is longer than {MAX_NAME_BYTES} bytes "
                      "(UTF-8): use a shorter file or folder name")
    return path


def user_dir(data_dir: Path) -> Path:
    """``USER_CACHE_DIR`` of the jobs a server with this data dir runs."""
    return Path(data_dir) / "cache" / "user"


def shared_dir(data_dir: Path) -> Path:
    """``SHARED_CACHE_DIR`` of the jobs a server with this data dir runs."""
    return Path(data_dir) / "cache" / "shared"


@dataclass(frozen=True)
class UserCache:
    """The user cache of one data dir (the shared cache with ``shared=True``): list, store
    (by rename) and delete files."""

    data_dir: Path
    shared: bool = False

    @property
    def root(self) -> Path:
        return shared_dir(self.data_dir) if self.shared else user_dir(self.data_dir)

    @property
    def label(self) -> str:
        """``user cache`` or ``shared cache`` (for messages)."""
        return "shared cache" if self.shared else "user cache"

    @property
    def variable(self) -> str:
        """The variable jobs find it in."""
        return "SHARED_CACHE_DIR" if self.shared else "USER_CACHE_DIR"

    def route(self, path: str = "") -> str:
        """The Developer API route of ``path`` in this cache (for messages)."""
        return f"/v1/dev/cache{'/' + path if path else ''}{'?shared=true' if self.shared else ''}"

    def check(self, path: Any) -> str:
        """`check_path` with this cache's name in its messages."""
        return check_path(path, self.variable)

    @property
    def incoming(self) -> Path:
        """Where uploads are streamed before they are renamed into the cache."""
        return Path(self.data_dir) / "cache" / ".incoming"

    def clean_incoming(self) -> None:
        """Drop partial uploads a stopped server left behind (they were never visible)."""
        shutil.rmtree(self.incoming, ignore_errors=True)

    def partial(self) -> Path:
        """A fresh temporary file name for one upload (its folder is created)."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        return self.incoming / f"{uuid.uuid4().hex}.part"

    def _walk(self, path: str, *, writing: bool) -> Path:
        """The file system path of a checked ``path``, refusing any folder on the way that is
        a file or a symbolic link (409 when writing, 404 otherwise)."""
        parts = path.split("/")
        here = self.root
        for depth, part in enumerate(parts[:-1], start=1):
            here = here / part
            prefix = "/".join(parts[:depth])
            if here.is_symlink() or (here.exists() and not here.is_dir()):
                if not writing:
                    raise CacheError(404, f"No file or folder {_shown(path)} in the "
                                          f"{self.label}: GET {self.route()} lists what is "
                                          "there")
                what = "a symbolic link" if here.is_symlink() else "a file"
                raise CacheError(409, f"{_shown(prefix)} in the {self.label} is {what}, so it "
                                      f"cannot hold {_shown(path)}: delete it first (DELETE "
                                      f"{self.route(prefix)}) or choose another path")
        return here / parts[-1]

    def check_writable(self, path: str) -> Path:
        """Where ``path`` will be stored; `CacheError` (409) when a folder is in the way."""
        target = self._walk(path, writing=True)
        if target.is_dir() and not target.is_symlink():
            raise CacheError(409, f"{_shown(path)} is a folder in the {self.label}, and a file "
                                  "cannot replace it: delete the folder first (DELETE "
                                  f"{self.route(path)}) or choose another path")
        return target

    def install(self, partial: Path, path: str) -> None:
        """Move a complete upload to ``path``, replacing the file there, in one rename."""
        target = self.check_writable(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(partial, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                # The cache folder is on another file system (a symlinked data dir): copy
                # beside the target first, so the rename that publishes it is still atomic.
                beside = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
                try:
                    copy_private(partial, beside)
                    os.replace(beside, target)
                finally:
                    beside.unlink(missing_ok=True)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            # Something else (a running app) put a file or folder in the way meanwhile.
            raise CacheError(409, f"cannot store {_shown(path)} in the {self.label}: "
                                  f"{exc.strerror}; retry, or choose another path") from None

    def files(self) -> list[dict[str, Any]]:
        """Every regular file in the cache, by path: ``{"path", "size", "modifiedAt"}``."""
        root = self.root
        out: list[dict[str, Any]] = []
        if not root.is_dir():
            return out
        for folder, _dirs, names in os.walk(root):  # never follows symbolic links
            for name in names:
                full = Path(folder, name)
                try:
                    info = full.lstat()
                    rel = full.relative_to(root).as_posix()
                    rel.encode("utf-8")
                except (OSError, UnicodeEncodeError):
                    continue  # gone meanwhile, or a name JSON cannot carry
                if not stat.S_ISREG(info.st_mode):
                    continue
                modified = _dt.datetime.fromtimestamp(info.st_mtime, _dt.timezone.utc)
                out.append({"path": rel, "size": wire.int64_out(info.st_size),
                            "modifiedAt": wire.format_timestamp(modified)})
        out.sort(key=lambda f: f["path"])
        return out

    def delete(self, path: str) -> int:
        """Delete the file (or folder, with everything in it) at ``path``; returns how many
        files went. `CacheError` (404) when there is nothing there."""
        target = self._walk(path, writing=False)
        if target.is_symlink() or target.is_file():
            target.unlink(missing_ok=True)
            return 1
        if target.is_dir():
            count = sum(len(names) for _, _, names in os.walk(target))
            shutil.rmtree(target, ignore_errors=True)
            return count
        raise CacheError(404, f"No file or folder {_shown(path)} in the {self.label}: "
                              f"GET {self.route()} lists what is there")
