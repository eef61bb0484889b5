"""Tab completion for ``%bytenite`` lines and ``%%bytenite`` cells.

One IPython matcher (Matcher API v2, registered on ``ip.Completer.custom_matchers`` by
``%load_ext``) completes, on a ``%bytenite`` line: verbs, each verb's flags (read from its
parser in the verb table, so a new flag completes without touching this module), template
ids, job ids (this machine's ledger for the current server, then the last ``%bytenite jobs``
listing), job states, log levels, the choices of choice options, ``SECTION.KEY=`` for
``--param`` (from the template's params schemas), ``KEY=`` for ``--config``, and ``$names``
from the user's namespace. On a ``%%bytenite`` cell's first line it completes the cell's
flags; in the body (a YAML job spec) the spec's keys, template ids after ``templateId:``,
``app``/``partitioner``/``assembler`` under ``params:`` and each section's param names under
them, config keys under ``config:``, and ``$names`` anywhere a value goes.

A completion never waits on the network for more than :data:`TEMPLATE_WAIT` seconds: the
templates come from a :class:`TemplateCache` refreshed on a background thread, so the first
Tab may find it still empty (and the next one filled), and an unreachable server only means
no template ids. Nothing here starts ByteNite Local.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from IPython.core.completer import (
    CompletionContext,
    SimpleCompletion,
    SimpleMatcherResult,
    context_matcher,
)

from bytenite_nb.notebook.grammar import CELL_VERB, VERBS, parser_for

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.models import Template
    from bytenite_nb.notebook.magics import ByteniteMagics

__all__ = [
    "CONFIG_KEYS",
    "SPEC_KEYS",
    "TEMPLATE_WAIT",
    "CompletionState",
    "TemplateCache",
    "complete",
    "install",
    "uninstall",
]

#: Longest a completion waits for the template list when none has been fetched yet (seconds).
TEMPLATE_WAIT = 0.1
#: Seconds a fetched template list is used before a Tab refreshes it in the background.
TEMPLATE_TTL = 60.0
#: The keys a ``%%bytenite`` body takes (the spec's aliases ``source``/``destination`` first:
#: they are what people write).
SPEC_KEYS = ("templateId", "name", "description", "source", "dataSource", "destination",
             "dataDestination", "params", "config")
SECTIONS = ("app", "partitioner", "assembler")
#: The job config keys ``--config KEY=VALUE`` and a spec's ``config:`` take.
CONFIG_KEYS = ("taskTimeout", "jobTimeout", "maxTaskRetries", "isTestJob")
#: Values of ``--destination`` besides a ``$variable``.
DESTINATIONS = ("bucket", "bypass")
#: How many job ids a completion offers.
JOB_IDS = 30

_MAGIC = re.compile(r"(?:^|[=;]\s*|^\s*)%bytenite(?=\s|$)")
_CELL = re.compile(r"^\s*%%bytenite(?=\s|$)")
_BODY_KEY = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:(?P<rest>.*)$")


# ---------------------------------------------------------------------------------------------
# What the completer remembers


class TemplateCache:
    """The server's templates, fetched on a background thread and kept :data:`TEMPLATE_TTL`.

    ``fetch`` returns the templates (it may be slow or fail: a failure keeps what was
    there). :meth:`get` never blocks for more than ``wait`` seconds.
    """

    def __init__(self, fetch: Callable[[], Iterable[Template]], *,
                 ttl: float = TEMPLATE_TTL) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self._templates: dict[str, Template] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self._running: threading.Event | None = None
        #: Why the last refresh failed, if it did (shown by nothing; for debugging).
        self.error: BaseException | None = None

    def put(self, templates: Iterable[Template]) -> None:
        """Take a fresh list (e.g. what ``%bytenite templates`` just fetched)."""
        fresh = {t.id: t for t in templates if getattr(t, "id", "")}
        with self._lock:
            self._templates = fresh
            self._fetched_at = time.monotonic()

    def get(self, wait: float = TEMPLATE_WAIT) -> dict[str, Template]:
        """The templates known now, refreshing in the background when stale.

        With nothing fetched yet, waits up to ``wait`` seconds for the refresh it starts.
        """
        with self._lock:
            stale = self._fetched_at is None or time.monotonic() - self._fetched_at > self.ttl
            running = self._running
            if stale and running is None:
                running = self._running = threading.Event()
                threading.Thread(target=self._refresh, args=(running,), daemon=True,
                                 name="bytenite-template-cache").start()
            empty = self._fetched_at is None
        if empty and running is not None and wait > 0:
            running.wait(wait)
        with self._lock:
            return dict(self._templates)

    def _refresh(self, done: threading.Event) -> None:
        try:
            self.put(list(self._fetch()))
            self.error = None
        except Exception as exc:  # unreachable server, no key: no template ids, no error
            self.error = exc
            with self._lock:
                # Try again next time, but not on every keystroke.
                self._fetched_at = self._fetched_at or time.monotonic() - self.ttl + 5.0
        finally:
            with self._lock:
                self._running = None
            done.set()


@dataclass
class CompletionState:
    """What completion knows beyond the line: templates, and job ids seen in listings."""

    templates: TemplateCache
    #: Ids of the last ``%bytenite jobs`` listing, newest first.
    listed_jobs: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    def saw_jobs(self, job_ids: Iterable[str]) -> None:
        """Remember the ids of a listing the user just saw (replacing the previous one)."""
        ids = [str(i) for i in job_ids if i]
        self.listed_jobs.clear()
        self.listed_jobs.extend(ids)


def state_for(magics: ByteniteMagics) -> CompletionState:
    """The magics' completion state (made on first use)."""
    state = getattr(magics, "completion_state", None)
    if state is None:
        state = CompletionState(TemplateCache(lambda: _fetch_templates(magics)))
        magics.completion_state = state
    return state


def _session_client(magics: ByteniteMagics) -> Any:
    """The client the magics would use, or ``None`` when using one would start a server."""
    session = magics.connection
    url = magics.base_url or None
    if url is None and session.configured_base_url() is None:
        return None  # only auto_local would find a server: never start one from a Tab
    return session.client(url)


def _fetch_templates(magics: ByteniteMagics) -> list[Template]:
    client = _session_client(magics)
    if client is None:
        return []
    # Short timeout, no retries: this runs behind a keystroke.
    quick = client.with_options(timeout=5.0, max_retries=0)
    try:
        return list(quick.templates(page_size=500))
    finally:
        quick.close()


# ---------------------------------------------------------------------------------------------
# Completion sources


def _job_ids(magics: ByteniteMagics) -> list[str]:
    """Recent job ids: this machine's ledger for the current server, then the last listing."""
    from bytenite_nb.notebook.ledger import Ledger, normalize_base_url

    ids: list[str] = []
    try:
        entries = Ledger(magics.ledger_path or None).entries()
    except Exception:
        entries = []
    url = normalize_base_url(magics.base_url) if magics.base_url else ""
    for entry in reversed(entries):
        if not url or normalize_base_url(entry.base_url) == url:
            ids.append(entry.job_id)
    state = getattr(magics, "completion_state", None)
    if state is not None:
        ids.extend(state.listed_jobs)
    seen: set[str] = set()
    unique = [i for i in ids if not (i in seen or seen.add(i))]
    return unique[:JOB_IDS]


def _names(namespace: Mapping[str, Any]) -> list[str]:
    """User variables worth a ``$name``: data, not modules, functions or classes."""
    import types

    out = []
    for name, value in namespace.items():
        if name.startswith("_") or not name.isidentifier():
            continue
        if isinstance(value, (types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                              type)):
            continue
        out.append(name)
    return sorted(out)


def _enum_names(enum_name: str) -> list[str]:
    from bytenite_nb import wire

    return [m.name.lower() for m in getattr(wire, enum_name) if m.name != "UNKNOWN"]


def _schema_keys(template: Template | None, section: str) -> list[str]:
    schemas = (getattr(template, "raw", None) or {}).get("paramsSchema") or {}
    schema = schemas.get(section) if isinstance(schemas, Mapping) else None
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    return list(props) if isinstance(props, Mapping) else []


# ---------------------------------------------------------------------------------------------
# Reading the line


@dataclass
class _Words:
    """The words of a magic line before the cursor, and the one being typed."""

    done: list[str]
    fragment: str


def _words(text: str) -> _Words:
    """Split on whitespace outside quotes; an open quote is part of the fragment."""
    words: list[str] = []
    current, quote, started = "", "", False
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                current += ch
        elif ch in "'\"":
            quote, started = ch, True
        elif ch.isspace():
            if started or current:
                words.append(current)
            current, started = "", False
        else:
            current += ch
            started = True
    return _Words(words, current)


def _option_actions(verb: str) -> dict[str, Any]:
    parser = parser_for(verb)
    return {s: a for a in parser._actions for s in a.option_strings}


def _positionals(verb: str) -> list[Any]:
    return [a for a in parser_for(verb)._actions if not a.option_strings]


def _takes_value(action: Any) -> bool:
    return action.nargs != 0


@dataclass
class _Position:
    """Where the cursor is in a verb's arguments."""

    verb: str
    option: Any = None       # the option whose value is being typed
    positional: Any = None   # the positional argument being typed
    used: set[str] = field(default_factory=set)
    #: Values given so far, by destination (positionals and options).
    values: dict[str, str] = field(default_factory=dict)


def _locate(verb: str, words: list[str]) -> _Position:
    """Which option value or positional the next word is (``words``: after the verb)."""
    actions = _option_actions(verb)
    positionals = _positionals(verb)
    position = _Position(verb)
    filled = 0
    expecting = None
    for word in words:
        if expecting is not None:
            position.values[expecting.dest] = word
            expecting = None
            continue
        if word.startswith("-") and len(word) > 1:
            name, eq, value = word.partition("=")
            action = actions.get(name)
            if action is not None:
                position.used.add(name)
                if _takes_value(action):
                    if eq:
                        position.values[action.dest] = value
                    else:
                        expecting = action
            continue
        if filled < len(positionals):
            position.values.setdefault(positionals[filled].dest, word)
            if positionals[filled].nargs not in ("*", "+"):
                filled += 1
    if expecting is not None:
        position.option = expecting
    elif filled < len(positionals):
        position.positional = positionals[filled]
    return position


# ---------------------------------------------------------------------------------------------
# The completer


class _Completer:
    """Completions for one request; ``kind`` names the completion type shown in the popup."""

    def __init__(self, magics: ByteniteMagics, fragment: str) -> None:
        self.magics = magics
        self.fragment = fragment
        self.items: list[SimpleCompletion] = []

    def add(self, candidates: Iterable[str], kind: str, *, prefix: str = "") -> None:
        typed = self.fragment[len(prefix):] if self.fragment.startswith(prefix) else None
        if typed is None:
            return
        seen = {c.text for c in self.items}
        for text in candidates:
            full = prefix + text
            if text.startswith(typed) and full not in seen:
                self.items.append(SimpleCompletion(full, type=kind))
                seen.add(full)

    def variables(self) -> None:
        if self.fragment.startswith("$"):
            self.add(_names(self.magics.shell.user_ns), "variable", prefix="$")

    def templates(self, prefix: str = "") -> dict[str, Template]:
        known = state_for(self.magics).templates.get()
        self.add(sorted(known), "template", prefix=prefix)
        return known

    def result(self) -> SimpleMatcherResult:
        return SimpleMatcherResult(completions=self.items, matched_fragment=self.fragment,
                                   suppress=bool(self.items), ordered=True)


def _template_named(magics: ByteniteMagics, words: Sequence[str], verb: str) -> Any:
    """The template a ``run``/cell line names (positional or ``--template``), from the cache."""
    template_id = _locate(verb, list(words)).values.get("template")
    if not template_id:
        return None
    return state_for(magics).templates.get().get(template_id)


def _complete_value(c: _Completer, position: _Position, words: list[str]) -> None:
    """The value of ``position.option`` or ``position.positional``."""
    action = position.option or position.positional
    dest = getattr(action, "dest", "")
    c.variables()
    if c.fragment.startswith("$"):
        return
    if getattr(action, "choices", None):
        c.add([str(x) for x in action.choices], "choice")
    elif dest == "template":
        c.templates()
    elif dest in ("job_id",):
        c.add(_job_ids(c.magics), "job id")
    elif dest == "topic":
        c.add(list(VERBS), "verb")
    elif dest == "state":  # the status words (bytenite_nb/vocabulary.py), not the wire's
        from bytenite_nb.vocabulary import STATUSES

        c.add([s for s in STATUSES if s != "unknown"], "state")
    elif dest == "level":
        c.add(_enum_names("LogLevel"), "level")
    elif dest == "destination":
        c.add(DESTINATIONS, "destination")
    elif dest == "config":
        c.add([f"{k}=" for k in CONFIG_KEYS], "config")
    elif dest == "param":
        template = _template_named(c.magics, words, position.verb)
        keys = [f"{s}.{k}=" for s in SECTIONS for k in _schema_keys(template, s)]
        c.add(keys, "param")


def _complete_line(magics: ByteniteMagics, verb_words: str, *, cell_line: bool) -> _Completer:
    split = _words(verb_words)
    c = _Completer(magics, split.fragment)
    if cell_line:
        verb, rest = CELL_VERB, split.done
    elif not split.done:
        c.add(list(VERBS), "verb")
        return c
    else:
        verb, rest = split.done[0], split.done[1:]
        if verb not in VERBS:
            return c
    position = _locate(verb, rest)
    if split.fragment.startswith("-") and position.option is None:
        actions = _option_actions(verb)
        names = [n for n in parser_for(verb).option_names() if n.startswith("--")]
        fresh = [n for n in names if n not in position.used
                 or isinstance(actions[n], argparse._AppendAction)]
        c.add(fresh, "flag")
        return c
    if position.option is not None or position.positional is not None:
        _complete_value(c, position, rest)
    else:
        c.variables()
    return c


def _parent_key(lines: Sequence[str], index: int, indent: int) -> tuple[str, int] | None:
    """The key of the nearest line above ``index`` indented less than ``indent``."""
    for line in reversed(lines[:index]):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _BODY_KEY.match(line)
        width = len(line) - len(line.lstrip())
        if width < indent:
            return (match.group("key"), width) if match else None
    return None


def _body_template(magics: ByteniteMagics, lines: Sequence[str]) -> Any:
    words = _words(lines[0].split("%%bytenite", 1)[-1] + " ").done
    chosen = _template_named(magics, words, CELL_VERB)
    if chosen is not None:
        return chosen
    for line in lines[1:]:
        match = _BODY_KEY.match(line)
        if match and match.group("key") in ("templateId", "template") and not match["indent"]:
            return state_for(magics).templates.get().get(match.group("rest").strip().strip("'\""))
    return None


def _complete_body(magics: ByteniteMagics, lines: list[str], index: int,
                   before: str) -> _Completer:
    """Completion inside a ``%%bytenite`` body (YAML block style)."""
    indent = len(before) - len(before.lstrip())
    match = _BODY_KEY.match(before)
    if match:  # after `key:`: the value
        c = _Completer(magics, _words(match.group("rest")).fragment)
        key = match.group("key")
        c.variables()
        if key in ("templateId", "template") and not c.fragment.startswith("$"):
            c.templates()
        return c
    fragment = before.strip()
    if fragment.startswith("- "):
        fragment = fragment[2:]
    c = _Completer(magics, fragment)
    if fragment.startswith("$"):
        c.variables()
        return c
    if not re.fullmatch(r"[\w.-]*", fragment):
        return c
    parent = _parent_key(lines, index, indent)
    if parent is None:
        if indent == 0:
            used = {m.group("key") for m in map(_BODY_KEY.match, lines[1:index]) if m}
            c.add([f"{k}: " for k in SPEC_KEYS if k not in used], "spec key")
        return c
    key, _ = parent
    if key == "params":
        c.add([f"{s}:" for s in SECTIONS], "section")
    elif key == "config":
        c.add([f"{k}: " for k in CONFIG_KEYS], "config")
    elif key in SECTIONS:
        grand = _parent_key(lines, index, parent[1])
        if grand is not None and grand[0] == "params":
            template = _body_template(magics, lines)
            c.add([f"{k}: " for k in _schema_keys(template, key)], "param")
    return c


def complete(magics: ByteniteMagics, context: CompletionContext) -> SimpleMatcherResult:
    """The completions for ``context`` (empty unless the cursor is in a ``%bytenite`` line
    or a ``%%bytenite`` cell)."""
    lines = context.full_text.split("\n")
    before = context.text_until_cursor
    empty = SimpleMatcherResult(completions=[], suppress=False)
    if lines and _CELL.match(lines[0]):
        if context.cursor_line == 0:
            tail = before.split("%%bytenite", 1)
            if len(tail) < 2:
                return empty
            return _complete_line(magics, tail[1], cell_line=True).result()
        return _complete_body(magics, lines, context.cursor_line, before).result()
    found = None
    for found in _MAGIC.finditer(before):  # noqa: B007 - the last %bytenite on the line
        pass
    if found is None:
        return empty
    rest = before[found.end():]
    if not rest[:1].isspace():
        return empty
    return _complete_line(magics, rest, cell_line=False).result()


def install(ip: Any, magics: ByteniteMagics) -> Callable[..., Any] | None:
    """Register the matcher on ``ip``'s completer; returns it (``None`` without a completer)."""
    completer = getattr(ip, "Completer", None)
    if completer is None or not hasattr(completer, "custom_matchers"):
        return None

    @context_matcher(identifier="bytenite_nb.completion")
    def bytenite_matcher(context: CompletionContext) -> SimpleMatcherResult:
        try:
            return complete(magics, context)
        except Exception:  # a completion must never print a traceback into the notebook
            return SimpleMatcherResult(completions=[], suppress=False)

    # Ahead of IPython's own matchers, so our results win on a %bytenite line.
    bytenite_matcher.matcher_priority = 10  # type: ignore[attr-defined]
    completer.custom_matchers.append(bytenite_matcher)
    magics.completion_matcher = bytenite_matcher
    return bytenite_matcher


def uninstall(ip: Any, magics: Any) -> None:
    """Remove the matcher :func:`install` registered."""
    matcher = getattr(magics, "completion_matcher", None)
    completer = getattr(ip, "Completer", None)
    if matcher is not None and completer is not None:
        with contextlib.suppress(ValueError):
            completer.custom_matchers.remove(matcher)
    if magics is not None:
        magics.completion_matcher = None
