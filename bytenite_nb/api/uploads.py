"""Uploads for the ``file`` data source: PUT the bytes to the job's ``tempUrl``, streamed."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["UploadSource", "is_upload_source", "open_upload"]

#: What can be uploaded: a path, raw bytes, or a binary file object.
UploadSource = str | os.PathLike | bytes | bytearray | memoryview | IO[bytes]


def is_upload_source(value: Any) -> bool:
    """Whether ``value`` is bytes, a binary file object, or a path to an existing file."""
    if isinstance(value, (bytes, bytearray, memoryview)) or hasattr(value, "read"):
        return True
    if isinstance(value, (str, os.PathLike)):
        return Path(value).expanduser().is_file()
    return False


def open_upload(source: UploadSource) -> tuple[Any, str, int | None, bool]:
    """``(body, filename, size, close_after)`` for a PUT.

    Paths are opened (and streamed by requests in blocks, never read whole); bytes are sent
    as-is; file objects are streamed from their current position.
    Raises ``FileNotFoundError`` / ``IsADirectoryError`` / ``TypeError`` for bad input.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return data, "data.bin", len(data), False
    if hasattr(source, "read"):
        name = Path(str(getattr(source, "name", "data.bin"))).name or "data.bin"
        size = None
        with contextlib.suppress(AttributeError, OSError, io.UnsupportedOperation):
            size = os.fstat(source.fileno()).st_size - source.tell()  # type: ignore[union-attr]
        return source, name, size, False
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory; upload one file (zip a folder first)")
        if not path.is_file():
            raise FileNotFoundError(f"no such file to upload: {path}")
        return path.open("rb"), path.name, path.stat().st_size, True
    raise TypeError(f"cannot upload a {type(source).__name__}: pass a path, bytes or a binary file")
