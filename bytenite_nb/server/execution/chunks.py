"""The files between a run's stages: the partitioner's chunks and the tasks' results.

Chunks: every file the partitioner leaves in ``CHUNKS_DIR`` is one task. ``data_{i}.bin``
files come first, by ``i``; any other files follow, by name. ``CHUNK_NUMBER`` is the position
in that order (0 … numChunks-1).

Results: each task's ``TASK_RESULTS_DIR`` is moved into the assembler's, chunk by chunk, keeping
relative paths. A path already taken by an earlier chunk is never overwritten: the later file is
renamed ``<stem>-chunk<N><ext>`` (``-chunk<N>-<k>`` if that is taken too), so N tasks that all
write ``out.png`` give ``out.png`` (the first chunk that wrote it), ``out-chunk1.png``, …
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bytenite_nb.server.private import copy_private

__all__ = ["chunk_files", "flatten_results", "link_or_copy"]


_CHUNK_NAME = re.compile(r"data_(\d+)\.bin")


def chunk_files(chunks_dir: Path) -> list[Path]:
    """The partitioner's chunk files in task order: ``data_{i}.bin`` by ``i``, then the rest."""
    numbered: list[tuple[int, str, Path]] = []
    others: list[Path] = []
    with os.scandir(chunks_dir) as it:  # (file types from the listing: no stat per chunk)
        for entry in it:
            if not entry.is_file():
                continue
            match = _CHUNK_NAME.fullmatch(entry.name)
            if match:
                numbered.append((int(match.group(1)), entry.name, Path(entry.path)))
            else:
                others.append(Path(entry.path))
    return [p for _, _, p in sorted(numbered)] + sorted(others, key=lambda p: p.name)


def _suffixed(name: str, chunk: int, k: int) -> str:
    stem, ext = name, ""
    if not name.startswith(".") and "." in name:
        stem, ext = name.rsplit(".", 1)
        ext = "." + ext
        if stem.endswith(".tar"):
            stem, ext = stem[:-4], ".tar" + ext
    tail = f"-chunk{chunk}" + (f"-{k}" if k else "")
    return f"{stem}{tail}{ext}"


def _place(files: set[str], dirs: set[str], parts: list[str], chunk: int) -> list[str]:
    """A free relative destination for ``parts``, renaming on collision (``files``/``dirs``:
    the relative paths already taken in the destination)."""
    parts = list(parts)
    for i in range(len(parts) - 1):
        prefix = "/".join(parts[: i + 1])
        if prefix in files:  # a file already sits where this chunk needs a folder
            head, k = "/".join(parts[:i]), 0
            while True:
                name = _suffixed(parts[i], chunk, k)
                if f"{head}/{name}".lstrip("/") not in files:
                    break
                k += 1
            parts[i] = name
    head = "/".join(parts[:-1])
    name, k = parts[-1], 0
    while f"{head}/{name}".lstrip("/") in files or f"{head}/{name}".lstrip("/") in dirs:
        name = _suffixed(parts[-1], chunk, k)
        k += 1
    return [*parts[:-1], name]


def _walk(folder: str, parts: tuple[str, ...] = ()) -> Iterator[tuple[list[str], str, bool]]:
    """``(relative parts, path, is_symlink)`` of every file under ``folder``, in name order;
    symlinks (to anything) are reported as files and not followed."""
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.is_symlink():
            yield [*parts, entry.name], entry.path, True
        elif entry.is_dir():
            yield from _walk(entry.path, (*parts, entry.name))
        else:
            yield [*parts, entry.name], entry.path, False


def flatten_results(
    task_results: Sequence[tuple[int, Path]],
    dest: Path,
    on_note: Callable[[int, str], None] | None = None,
) -> int:
    """Move each ``(chunk, results_dir)`` into ``dest`` in the given order; returns the count.

    Relative paths are kept; a collision renames the later file (see the module docstring).
    Symlinks are replaced by a copy of the file they point to (others are dropped), so that
    results never reference files outside the job.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root = str(dest)
    files: set[str] = set()
    dirs: set[str] = set()
    for parts, _, _ in _walk(root):  # whatever dest already holds is taken
        files.add("/".join(parts))
        for i in range(1, len(parts)):
            dirs.add("/".join(parts[:i]))
    moved = 0
    for chunk, results_dir in task_results:
        if not os.path.isdir(results_dir):
            continue
        for parts, src, is_link in _walk(str(results_dir)):
            placed = _place(files, dirs, parts, chunk)
            for i in range(1, len(placed)):
                rel_dir = "/".join(placed[:i])
                if rel_dir not in dirs:
                    os.mkdir(os.path.join(root, rel_dir))
                    dirs.add(rel_dir)
            target = os.path.join(root, *placed)
            if is_link:
                if not os.path.isfile(src):
                    if on_note:
                        on_note(chunk, f"dropped symlink {'/'.join(parts)}: not a file")
                    continue
                shutil.copyfile(src, target)
            else:
                os.replace(src, target)
            files.add("/".join(placed))
            moved += 1
            if on_note and placed != parts:
                on_note(chunk, f"result {'/'.join(parts)} renamed to {'/'.join(placed)} "
                               "(name taken)")
    return moved


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (free, even for a large file); copy it across
    filesystems."""
    try:
        os.link(src, dst)
    except OSError:
        copy_private(src, dst)
