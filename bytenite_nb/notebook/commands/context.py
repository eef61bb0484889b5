"""What every command gets: the parsed line, the magics' configuration, and helpers.

The one rule implemented here for all verbs: a flag on the magic line beats ``%config``
(:meth:`Context.option`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from bytenite_nb.notebook.grammar import Command
from bytenite_nb.notebook.ledger import normalize_base_url
from bytenite_nb.notebook.spec import resolve_text

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.jobs import Job
    from bytenite_nb.notebook.ledger import Ledger
    from bytenite_nb.notebook.magics import ByteniteMagics

__all__ = ["Context"]


@dataclass
class Context:
    """One magic invocation: ``magics`` (config + session state), ``command``, ``cell`` body."""

    magics: ByteniteMagics
    command: Command
    cell: str | None = None

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.magics.shell.user_ns

    def option(self, name: str, trait: str | None = None) -> Any:
        """The line's value for ``name`` if given, else the ``%config`` trait (flags win)."""
        value = self.command.options.get(name)
        if value is not None:
            return value
        return getattr(self.magics, trait or name)

    def resolve(self, text: str | None, where: str) -> Any:
        """Fill ``$name``/``{name}`` placeholders of one line argument from the namespace."""
        return None if text is None else resolve_text(text, self.user_ns, where)

    def job_id(self, text: str | None = None) -> str:
        """A job id from the line: literal, or a ``$var`` holding a Job, a dict or an id."""
        raw = self.resolve(text if text is not None else self.command.options.get("job_id"),
                           "JOB_ID")
        value = getattr(raw, "id", raw)
        if isinstance(value, dict):
            value = value.get("id")
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"JOB_ID: expected a job id or a Job, got {type(raw).__name__}")
        return value.strip()

    def base_url(self) -> str | None:
        """``--base-url`` on the line, else ``%config ByteniteMagics.base_url``, else ``None``."""
        return self.command.options.get("base_url") or self.magics.base_url or None

    def client(self) -> Client:
        """The client for this line, starting ByteNite Local first if configured to, or
        again if the session's ByteNite Local has stopped by itself (idle timeout)."""
        url = self.base_url()
        session = self.magics.connection
        local = session.local
        if (url is not None and local is not None and getattr(local, "running", True) is False
                and normalize_base_url(url) == normalize_base_url(str(local.base_url))):
            from bytenite_nb.notebook.commands.local import restart_local

            url = str(restart_local(self).base_url)
        if url is None and self.magics.auto_local and session.configured_base_url() is None:
            from bytenite_nb.notebook.commands.local import start_local

            start_local(self, announce_auto=True)
            url = self.magics.base_url or None
        return session.client(url)

    def job(self, job_id: str | None = None) -> Job:
        """The Job handle for the line's JOB_ID (fetched from the server)."""
        return self.client().job(self.job_id(job_id))

    @property
    def ledger(self) -> Ledger:
        from bytenite_nb.notebook.ledger import Ledger

        return Ledger(self.magics.ledger_path or None)

    def bind(self, value: Any, *names: str | None) -> None:
        """Store ``value`` in the user's namespace under each given (non-empty) name."""
        for name in names:
            if name:
                self.user_ns[name] = value
