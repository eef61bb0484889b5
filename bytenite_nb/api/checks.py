"""What is checked on the client before a job is created, so a mistake is an error, not a
job that completes over nothing.

Three checks, one function each, shared by ``Client.submit``, the ``%bytenite run`` line, the
``%%bytenite`` cell and ``JobForm`` (each names the fix in its own words, see
:class:`Phrasing`):

- **The template exists** (:func:`find_template`): an unknown id is a ``NotFoundError`` with a
  did-you-mean, before anything is created.
- **Input data** (:func:`check_input`): a template that needs input (ByteNite Local's
  ``needsInput``, from its ``template.json``) and has no default data source is refused
  without a source, naming the flag: ``csv-rows-template needs input data and none was given:
  --source PATH|URL``. ``bypass`` gives it none either.
- **Params** (:func:`route_params`): each section's params are checked against the names its
  JSON Schema declares (``paramsSchema``, sent with the template by ByteNite Local); a name a
  section does not declare is refused with a did-you-mean, or with the section that does
  declare it (``rows_per_chunk is a partitioner param: --param
  partitioner.rows_per_chunk=10``). A param given without a section (``--param key=value``,
  or a spec's ``params: {key: value}``) goes to the one section whose schema declares it; when
  none or several do, the error lists the candidates. A section without a schema takes any
  name; a schema that allows other names (``additionalProperties`` true or a schema,
  ``patternProperties``) takes them. A template with no schemas at all (ByteNite's hosted
  API sends none) is not checked, and unqualified params go to the app, as ByteNite does.

Values are checked by the server against the full schemas when the job is created.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bytenite_nb import wire
from bytenite_nb.api.errors import InputError, NotFoundError
from bytenite_nb.vocabulary import suggest

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.models import Template

__all__ = [
    "CELL",
    "FORM",
    "MAGIC",
    "PYTHON",
    "Phrasing",
    "check_input",
    "declared_params",
    "find_template",
    "needs_input_message",
    "route_params",
    "template_schemas",
]

#: The params sections an engine's schema applies to, in the order messages list them.
SECTIONS = ("app", "partitioner", "assembler")
#: How alike a template id must be to be suggested (ids share "-template" and the like).
ID_CUTOFF = 0.8


@dataclass(frozen=True)
class Phrasing:
    """How one way of starting a job spells a param and a data source in a fix."""

    #: ``param(section, key, value)``: one param, written the way the user writes it.
    param: Callable[[str, str, Any], str]
    #: Where the data source goes.
    source: str


def _literal(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


PYTHON = Phrasing(lambda s, k, v: f"params={{'{s}': {{'{k}': {v!r}}}}}", "source=PATH|URL")
MAGIC = Phrasing(lambda s, k, v: f"--param {s}.{k}={_literal(v)}", "--source PATH|URL")
CELL = Phrasing(lambda s, k, v: f"params: {{{s}: {{{k}: {_literal(v)}}}}}", "source: PATH|URL")
FORM = Phrasing(lambda s, k, v: f"{s} params: {k}", "choose URL or file upload")


def find_template(client: Client, template_id: str) -> Template:
    """The template ``template_id``; a ``NotFoundError`` with a did-you-mean when there is
    none (the listing is read once to suggest)."""
    try:
        return client.template(template_id, engines=False)  # (its engines are not needed)
    except NotFoundError as exc:
        try:
            known = [t.id for t in client.templates()]
        except Exception:  # the suggestion is a courtesy
            known = []
        hint = suggest(template_id, known, cutoff=ID_CUTOFF)
        listing = "" if hint else " `%bytenite templates` lists them."
        raise NotFoundError(
            f"no template {template_id!r} on {client.base_url}.{hint}{listing}",
            status_code=404, method=exc.method, url=exc.url, request_id=exc.request_id,
        ) from None


def needs_input_message(template_id: str, phrasing: Phrasing) -> str:
    """The one sentence every way of starting a job says when its input is missing."""
    return f"{template_id} needs input data and none was given: {phrasing.source}"


def check_input(template: Template, data_source: Mapping[str, Any] | None, *,
                uploading: bool = False, phrasing: Phrasing = PYTHON) -> None:
    """Refuse to start ``template`` without input when it needs some (see the module
    docstring). ``data_source``: the wire data source given (``None``: none), ``uploading``:
    a file will be uploaded. Raises :class:`InputError` (a ``ValueError``)."""
    if uploading or not template_needs_input(template):
        return
    default = template.data_source
    given = data_source if data_source is not None else default
    descriptor = (given or {}).get("dataSourceDescriptor") if isinstance(given, Mapping) else None
    if descriptor and descriptor != wire.Descriptor.BYPASS.value:
        return
    raise InputError(needs_input_message(template.id, phrasing))


def template_needs_input(template: Template) -> bool:
    """Whether the template says it needs input data (``needsInput``, a ByteNite Local
    extension); ``False`` when the server does not say."""
    raw = getattr(template, "raw", {}) or {}
    return bool(raw.get("needsInput", raw.get("needs_input", False)))


def template_schemas(template: Template | None) -> dict[str, dict[str, Any]]:
    """The params JSON Schemas a template sends, per section (``{"app": {...}}``); ``{}`` when
    none (ByteNite's hosted API). ByteNite Local sends ``paramsSchema``; ``schemas`` per
    section, or ``schema`` for the app, are read too."""
    if template is None:
        return {}
    raw = getattr(template, "raw", {}) or {}
    for key in ("paramsSchema", "schemas", "params_schema"):
        value = raw.get(key)
        if isinstance(value, Mapping):
            return {k: dict(v) for k, v in value.items()
                    if k in SECTIONS and isinstance(v, Mapping)}
    if isinstance(raw.get("schema"), Mapping):
        return {"app": dict(raw["schema"])}
    return {}


def declared_params(schema: Mapping[str, Any]) -> tuple[list[str], bool]:
    """(the names a section's schema declares, whether it also takes other names)."""
    props = schema.get("properties")
    names = [str(k) for k in props] if isinstance(props, Mapping) else []
    extra = schema.get("additionalProperties")
    open_ended = (extra is not None and extra is not False) or bool(
        schema.get("patternProperties")) or not isinstance(props, Mapping)
    return names, open_ended


def route_params(template: Template, params: Mapping[str, Any] | None,
                 loose: Mapping[str, Any] | None = None, *,
                 phrasing: Phrasing = PYTHON) -> dict[str, Any] | None:
    """``params`` (by section) with the ``loose`` ones (no section) added to the section that
    declares each, every name checked against its section's schema (see the module
    docstring). Returns the params to send (``None`` when there are none); raises
    :class:`InputError` naming the fix, in ``phrasing``."""
    schemas = template_schemas(template)
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v)
                           for k, v in (params or {}).items()}
    names = {s: declared_params(schemas[s]) for s in SECTIONS if s in schemas}
    for key, value in (loose or {}).items():
        if not names:  # nothing to route by: params are the app's, as on ByteNite
            out.setdefault("app", {})[key] = value
            continue
        owners = [s for s, (declared, _) in names.items() if key in declared]
        if len(owners) == 1:
            out.setdefault(owners[0], {})[key] = value
            continue
        if owners:
            options = " or ".join(phrasing.param(s, key, value) for s in owners)
            raise InputError(f"{key} is a param of {' and '.join(owners)}: say which, "
                              f"{options}")
        raise InputError(_unknown(template, key, value, None, names, phrasing))
    problems, misplaced = [], True
    for section in SECTIONS:
        values = out.get(section)
        if section not in names or not isinstance(values, Mapping):
            continue
        declared, open_ended = names[section]
        for key, value in values.items():
            if key in declared or open_ended:
                continue
            problems.append(_unknown(template, key, value, section, names, phrasing,
                                     listing=False))
            misplaced &= any(key in d for s, (d, _) in names.items() if s != section)
    if problems:  # every name at once; what each section takes unless each was just misplaced
        takes = "; ".join(f"{s} takes {', '.join(d) or 'none'}" for s, (d, _) in names.items())
        raise InputError("; ".join(problems) + ("" if misplaced else f" ({takes})"))
    return out or None


def _unknown(template: Template, key: str, value: Any, section: str | None,
             names: Mapping[str, tuple[list[str], bool]], phrasing: Phrasing, *,
             listing: bool = True) -> str:
    """The message for a param ``key`` that ``section`` (or, unqualified, no section) does
    not declare; ``listing``: end with what each section takes."""
    owners = [s for s, (declared, _) in names.items() if key in declared and s != section]
    if owners:
        owner = owners[0]
        return f"{key} is {_article(owner)} {owner} param: {phrasing.param(owner, key, value)}"
    everything = [n for declared, _ in names.values() for n in declared]
    hint = suggest(key, everything)
    takes = "; ".join(f"{s} takes {', '.join(d) or 'none'}" for s, (d, _) in names.items())
    takes = f" {takes}" if listing else ""
    schemaless = [s for s in SECTIONS if s not in names]
    if section:
        text = f"the {section} of {template.id} takes no param {key!r}.{hint}{takes}"
    else:
        text = f"no section of {template.id} takes a param {key!r}.{hint}{takes}"
    if schemaless and section is None:
        text += (f"; {' and '.join(schemaless)} {'has' if len(schemaless) == 1 else 'have'} no "
                 f"schema and take{'s' if len(schemaless) == 1 else ''} any name: "
                 f"{phrasing.param(schemaless[0], key, value)}")
    return text


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
