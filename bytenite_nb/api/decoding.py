"""Bytes from ``GET /events`` -> event envelopes -> :class:`Event`.

:class:`StreamDecoder` / :func:`decode_events` accept NDJSON (grpc-gateway's one
``{"result": ...}`` object per line, ByteNite's format) and SSE framing (``id:``/``event:``/
``data:`` fields, blank-line dispatch), with ``\\n``, ``\\r\\n`` or ``\\r`` line ends,
however the bytes are split into chunks. Decoding works on bytes, never on
``Response.iter_lines()``, which splits a CRLF that straddles two chunks into two lines.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from bytenite_nb.api.models import opt_int, opt_str, parse_ts

__all__ = ["Event", "StreamDecoder", "decode_events", "is_newer"]

log = logging.getLogger("bytenite_nb.api.events")

_TERMINATOR = re.compile(rb"[\r\n]")


class StreamDecoder:
    """Incremental decoder: :meth:`feed` bytes as they arrive, :meth:`flush` at the end.

    Yields envelopes (``{"result": {"event", "data"}}`` or ``{"error": ...}``). SSE events are
    wrapped into the same envelope, with the SSE ``id`` kept as ``envelope["id"]``. Lines that
    are not valid JSON are logged and skipped.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        data = self._buf + chunk if self._buf else bytes(chunk)
        start = 0
        size = len(data)
        while True:
            match = _TERMINATOR.search(data, start)
            if match is None:
                break
            end = match.start()
            if data[end] == 0x0D:  # \r: a lone CR ends a line, unless \n follows (CRLF)
                if end + 1 == size:
                    break  # undecidable until the next chunk arrives
                nxt = end + 2 if data[end + 1] == 0x0A else end + 1
            else:
                nxt = end + 1
            self._line(data[start:end], out)
            start = nxt
        self._buf = data[start:]
        return out

    def flush(self) -> list[dict[str, Any]]:
        """End of stream: decode a last unterminated line and dispatch a pending SSE event."""
        out: list[dict[str, Any]] = []
        rest, self._buf = self._buf, b""
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        if rest:
            self._line(rest, out)
        self._dispatch(out)
        return out

    def _line(self, raw: bytes, out: list[dict[str, Any]]) -> None:
        text = raw.decode("utf-8", errors="replace")
        if not text.strip():
            self._dispatch(out)
            return
        if not self._data and text.lstrip().startswith("{"):
            self._emit_json(text, out)
            return
        if text.startswith(":"):
            return  # SSE comment (keep-alive)
        name, _, value = text.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value

    def _dispatch(self, out: list[dict[str, Any]]) -> None:
        if self._data:
            self._emit_json("\n".join(self._data), out, sse_event=self._event, sse_id=self._id)
        self._data, self._event, self._id = [], None, None

    @staticmethod
    def _emit_json(
        text: str,
        out: list[dict[str, Any]],
        *,
        sse_event: str | None = None,
        sse_id: str | None = None,
    ) -> None:
        try:
            obj = json.loads(text)
        except ValueError:
            log.warning("skipping an undecodable event line (%d characters)", len(text))
            return
        if not isinstance(obj, dict):
            return
        if "result" not in obj and "error" not in obj:
            # SSE carrying the bare event (no grpc-gateway wrapper).
            if "event" in obj and "data" in obj:
                obj = {"result": obj}
            else:
                obj = {"result": {"event": sse_event or "message", "data": obj}}
        if sse_id is not None:
            obj.setdefault("id", sse_id)
        out.append(obj)


def decode_events(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Decode an iterable of byte chunks (any split) into event envelopes."""
    decoder = StreamDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()


@dataclass(frozen=True)
class Event:
    """One event: its ``name`` (``wire.EVENT_*``), ``data`` payload, ``seq`` and ``job_id``."""

    name: str
    data: dict[str, Any]
    seq: str | None = None
    job_id: str | None = None

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Event | None:
        """``{"result": {"event", "data"}}`` -> Event; ``None`` for errors and junk."""
        result = envelope.get("result")
        if not isinstance(result, dict):
            return None
        name = result.get("event")
        data = result.get("data")
        if not isinstance(data, dict):
            data = {} if data is None else {"value": data}
        if not isinstance(name, str):
            name = ""
        # ByteNite Local puts ``seq`` beside ``event``; accept it inside ``data`` or as the SSE id.
        seq = result.get("seq")
        if seq is None or seq == "":
            seq = data.get("seq", envelope.get("id"))
        return cls(
            name=name,
            data=data,
            seq=None if seq is None or seq == "" else str(seq),
            job_id=opt_str(data.get("jobId") or data.get("job_id")),
        )

    @property
    def seq_number(self) -> int | None:
        return opt_int(self.seq)

    @property
    def timestamp(self) -> dt.datetime | None:
        return parse_ts(self.data.get("timestamp"))


def is_newer(seq: str | None, last: str | None) -> bool:
    """Whether ``seq`` comes after ``last`` (numeric when both are numbers)."""
    if seq is None or last is None:
        return True
    a, b = opt_int(seq), opt_int(last)
    if a is not None and b is not None:
        return a > b
    return seq != last
