"""The cell output of ``--load``: where the results went, their shape, and their first rows.

Like BigQuery's ``%%bigquery df``, the results are stored in the variable and the cell shows a
preview instead of the whole table.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["HEAD_ROWS", "ResultsPreview"]

#: Rows of each table the preview shows.
HEAD_ROWS = 5


def _shape(frame: Any) -> str:
    if isinstance(frame, str):  # a text result (docs/results.md): its lines
        lines = len(frame.splitlines())
        return f"text, {lines:,} line{'s' if lines != 1 else ''}"
    rows, columns = frame.shape
    return (f"{rows:,} row{'s' if rows != 1 else ''} × {columns} "
            f"column{'s' if columns != 1 else ''}")


def _head(value: Any) -> str:
    """The first rows of a table, or the first lines of a text, as text."""
    if isinstance(value, str):
        return "\n".join(value.splitlines()[:HEAD_ROWS])
    return value.head(HEAD_ROWS).to_string()


class ResultsPreview:
    """What a ``--load`` cell shows: variable, shape, source job, and the head of each table.

    ``value`` is what was stored (a DataFrame, or a dict of them by result file).
    """

    def __init__(self, value: Any, job: Any, names: Sequence[str]) -> None:
        self.value = value
        self.job_id = str(getattr(job, "id", ""))
        self.job_name = getattr(job, "name", None) or ""
        self.names = list(names)

    def _tables(self) -> list[tuple[str, Any]]:
        if isinstance(self.value, dict):
            return list(self.value.items())
        return [("", self.value)]

    def _headline(self) -> str:
        where = " and ".join(f"`{n}`" for n in self.names)
        job = f"{self.job_name} ({self.job_id})" if self.job_name else self.job_id
        if isinstance(self.value, dict):
            what = f"{len(self.value)} result table{'s' if len(self.value) != 1 else ''}"
            if not self.value:
                what = "no result tables (no CSV, TSV, JSON, JSON Lines, Parquet or text files)"
            return f"Stored {what} of job {job} in {where} (a dict by file name)."
        return f"Stored {_shape(self.value)} from job {job} in {where}."

    def __repr__(self) -> str:
        lines = [self._headline()]
        for name, frame in self._tables():
            if name:
                lines.append(f"{name}: {_shape(frame)}")
            lines.append(_head(frame))
        return "\n".join(lines)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        parts = [f'<div class="bn-loaded"><div>{html.escape(self._headline())}</div>']
        for name, frame in self._tables():
            if name:
                parts.append(f"<div><code>{html.escape(name)}</code>: "
                             f"{html.escape(_shape(frame))}</div>")
            if isinstance(frame, str):
                parts.append(f"<pre>{html.escape(_head(frame))}</pre>")
            else:
                parts.append(frame.head(HEAD_ROWS)._repr_html_() or "")
        parts.append("</div>")
        return "".join(parts)
