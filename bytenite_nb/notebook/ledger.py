"""A small local ledger of the jobs this user started from notebooks.

It is what makes ``%bytenite attach --last`` work after a kernel restart: every job the magics
create is appended here (job id, server, template, name, time) before anything else can go
wrong. One JSON object per line in ``<user data dir>/bytenite-nb/ledger.jsonl``: appends from
several kernels interleave whole lines, a damaged line is skipped, and the file is compacted
to the newest ``max_entries`` when it grows to twice that.

Nothing secret is written: no keys, no params, no data.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bytenite_nb import wire

__all__ = ["Ledger", "LedgerEntry", "default_ledger_path", "normalize_base_url"]


def default_ledger_path() -> Path:
    """``ledger.jsonl`` in the user's data dir (``~/.local/share/bytenite-nb`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("bytenite-nb")) / "ledger.jsonl"


def normalize_base_url(url: str | None) -> str:
    """The host root of a base URL, so ``http://h:1/`` and ``http://h:1/v1/customer`` match."""
    text = (url or "").strip().rstrip("/")
    for suffix in (wire.CUSTOMER_PREFIX, wire.COMPUTING_PREFIX):
        if text.endswith(suffix):
            text = text[: -len(suffix)].rstrip("/")
    return text


@dataclass(frozen=True)
class LedgerEntry:
    """One job started from a notebook."""

    job_id: str
    base_url: str
    template_id: str | None = None
    name: str | None = None
    created_at: str | None = None  # RFC 3339, UTC


class Ledger:
    """Append-only record of started jobs, newest last."""

    def __init__(self, path: Path | str | None = None, *, max_entries: int = 1000) -> None:
        self.path = Path(path) if path is not None else default_ledger_path()
        self.max_entries = max(1, int(max_entries))

    def record(
        self, job_id: str, base_url: str, *, template_id: str | None = None,
        name: str | None = None,
    ) -> LedgerEntry:
        """Append one job; returns the entry written."""
        entry = LedgerEntry(
            job_id=str(job_id),
            base_url=normalize_base_url(base_url),
            template_id=template_id,
            name=name,
            created_at=wire.format_timestamp(wire.utcnow()),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(entry), separators=(",", ":")) + "\n"
        # One write() of one line in append mode: concurrent kernels never split a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        self._maybe_compact()
        return entry

    def entries(self, base_url: str | None = None) -> list[LedgerEntry]:
        """Every readable entry, oldest first; only those for ``base_url`` when given."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        want = normalize_base_url(base_url) if base_url is not None else None
        out: list[LedgerEntry] = []
        for line in text.splitlines():
            try:
                raw = json.loads(line)
                entry = LedgerEntry(
                    job_id=str(raw["job_id"]), base_url=str(raw["base_url"]),
                    template_id=raw.get("template_id"), name=raw.get("name"),
                    created_at=raw.get("created_at"),
                )
            except (ValueError, KeyError, TypeError):
                continue  # a torn or hand-edited line must not hide the others
            if want is None or entry.base_url == want:
                out.append(entry)
        return out

    def last(self, base_url: str | None = None) -> LedgerEntry | None:
        """The newest entry (for ``base_url`` when given), or ``None``."""
        entries = self.entries(base_url)
        return entries[-1] if entries else None

    def _maybe_compact(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return
        if len(lines) < 2 * self.max_entries:
            return
        keep = "\n".join(lines[-self.max_entries:]) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ledger-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(keep)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
