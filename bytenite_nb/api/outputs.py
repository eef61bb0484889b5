"""What a finished job produced: how many result files, their total size, and (when cheap to
know) how many rows its tables hold.

:func:`outputs_of` asks the server for the job's result list (one request); when the tabular
results (CSV, TSV, JSON Lines) are small enough (:data:`ROW_COUNT_LIMIT` bytes in all) it
also reads them to count their rows, parsing CSV properly so a quoted newline is not a row.
Bigger results are not downloaded just to count them: the summary then leaves rows out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.models import ResultFile

__all__ = ["ROW_COUNT_LIMIT", "Outputs", "format_bytes", "outputs_of"]

#: Tabular results up to this many bytes in all are read to count their rows.
ROW_COUNT_LIMIT = 2_000_000
_DELIMITED = {".csv": ",", ".tsv": "\t"}
_LINES = frozenset({".jsonl", ".ndjson"})
#: How many file names a summary lists before "…".
_NAMES = 3


def format_bytes(size: int | None) -> str:
    """``512 B``, ``12.3 KB``, ``4.5 MB`` (powers of 1000, as file managers show them)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - unreachable


@dataclass(frozen=True)
class Outputs:
    """A finished job's result files: their names, total size, and rows when counted."""

    names: tuple[str, ...]
    total_bytes: int | None
    rows: int | None = None

    @property
    def count(self) -> int:
        return len(self.names)

    def describe(self) -> str:
        """``1 result file (result.csv), 1.2 MB, 35,000 rows`` / ``no result files``."""
        if not self.names:
            return "no result files"
        shown = ", ".join(self.names[:_NAMES]) + (", …" if self.count > _NAMES else "")
        parts = [f"{self.count} result file{'s' if self.count != 1 else ''} ({shown})"]
        if self.total_bytes is not None:
            parts.append(format_bytes(self.total_bytes))
        if self.rows is not None:
            parts.append(f"{self.rows:,} row{'s' if self.rows != 1 else ''}")
        return ", ".join(parts)

    def __str__(self) -> str:
        return self.describe()


def _row_count(data: bytes, suffix: str) -> int:
    text = data.decode("utf-8", errors="replace")
    if suffix in _LINES:
        return sum(1 for line in text.splitlines() if line.strip())
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_DELIMITED[suffix])
    rows = sum(1 for row in reader if row)
    return max(0, rows - 1)  # the header


def _tabular(name: str) -> str | None:
    suffix = PurePosixPath(name).suffix.lower()
    return suffix if suffix in _DELIMITED or suffix in _LINES else None


def outputs_of(client: Client, job_id: str, *, results: Sequence[ResultFile] | None = None,
               count_rows: bool = True) -> Outputs:
    """Summarise a COMPLETE job's results (raises the client's error while it is not)."""
    files = list(results) if results is not None else client.results(job_id)
    sizes = [f.size for f in files]
    total = sum(s for s in sizes if s is not None) if files and None not in sizes else None
    if not files:
        total = 0
    rows: int | None = None
    tables = [f for f in files if _tabular(f.name)]
    small = total is not None and total <= ROW_COUNT_LIMIT
    if count_rows and tables and small and len(tables) == len(files):
        rows = 0
        for result in tables:
            rows += _row_count(client.read_result(result), _tabular(result.name) or "")
    return Outputs(names=tuple(f.name for f in files), total_bytes=total, rows=rows)
