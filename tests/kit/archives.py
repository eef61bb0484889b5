"""Hand-made tar archives for the Developer API tests (including entries a real folder never
produces: links, devices, paths outside the folder)."""

from __future__ import annotations

import io
import tarfile


def make_tar(members: dict[str, bytes], *, gz: bool = False,
             extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A tar of ``members`` (name -> bytes) followed by the ``extra`` entries as given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buffer.getvalue()
