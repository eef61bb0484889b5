"""Run a notebook end to end from the command line and show what each cell printed.

``bytenite-nb notebook notebooks/quickstart.ipynb`` is how ``make quickstart`` runs the main
job: the notebook executes in a fresh kernel (nbclient), each code cell's text output is echoed
as it finishes, and the executed copy is saved so it can be opened in Jupyter afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["NotebookFailed", "run_notebook"]

_MAX_OUTPUT_CHARS = 2000


class NotebookFailed(RuntimeError):
    """A cell raised; the message names the cell and the error."""


def _text_of(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return str(output.get("text", ""))
    if kind in ("execute_result", "display_data"):
        return str(output.get("data", {}).get("text/plain", ""))
    if kind == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return ""


def _echo(cell: Any, index: int, out: TextIO) -> None:
    first_line = (cell.source.strip().splitlines() or [""])[0]
    print(f"\n[{index}] {first_line}", file=out)
    for output in cell.get("outputs", []):
        text = _text_of(output).rstrip()
        if len(text) > _MAX_OUTPUT_CHARS:
            text = text[:_MAX_OUTPUT_CHARS] + " …"
        if text:
            print("    " + text.replace("\n", "\n    "), file=out)
    out.flush()


def run_notebook(path: Path, *, output: Path | None = None, timeout: float = 600,
                 out: TextIO = sys.stdout) -> Path:
    """Execute ``path`` in a fresh kernel; returns where the executed copy was saved.

    Raises :class:`NotebookFailed` naming the first failing cell (the partial notebook is
    still saved, so nothing that ran is lost).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(path, as_version=4)
    output = output or path.with_name(path.stem + ".executed.ipynb")
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_cell_executed=lambda cell, cell_index, execute_reply: (
            _echo(cell, cell_index, out) if cell.cell_type == "code" else None
        ),
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        raise NotebookFailed(f"{path}: a cell failed:\n{exc}") from None
    finally:
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, output)
    return output
