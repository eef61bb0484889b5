"""What a job template takes, read from its params schemas: one :class:`ParamDoc` per param,
a text and an HTML description, and an example ``%%bytenite`` cell built from the defaults.

A template's engines (app, partitioner, assembler) each may have a ``schema.json`` (JSON
Schema, any draft ByteNite accepts); ByteNite Local sends them with the template as
``paramsSchema`` (``{"app": {...}, "partitioner": {...}}``). Local ``$ref``\\ s
(``#/$defs/...``) are followed, ``oneOf``/``anyOf`` read as "this or that", and a param's
default is the template's own value when it sets one, else the schema's ``default``.

Pure functions of a :class:`~bytenite_nb.api.models.Template`: no network, no IPython.
"""

from __future__ import annotations

import html
import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.models import Template

__all__ = ["SECTIONS", "ParamDoc", "example_cell", "param_docs", "render_html", "render_text",
           "resolve", "section_docs"]

#: Params sections in the order a job runs them.
SECTIONS = ("partitioner", "app", "assembler")
_WIDTH = 88
_MUTED = "#656d76"


@dataclass(frozen=True)
class ParamDoc:
    """One param of one section, as a person reads it.

    ``type`` is the JSON type in words (``"integer"``, ``"array | object"``); ``allowed`` the
    values an ``enum`` permits; ``limits`` the other constraints in words (``"≥ 1"``);
    ``default`` is set only when ``has_default``; ``examples`` come from the schema's
    ``examples``.
    """

    section: str
    name: str
    type: str = ""
    description: str = ""
    required: bool = False
    has_default: bool = False
    default: Any = None
    allowed: tuple[Any, ...] = ()
    limits: str = ""
    examples: tuple[Any, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        """``integer ≥ 1, default 1000`` / ``one of auto, csv; default auto`` / ``required``."""
        head = ("one of " + ", ".join(_show(v) for v in self.allowed)) if self.allowed \
            else self.type or "any value"
        parts = [head + (f" ({self.limits})" if self.limits else "")]
        if self.required:
            parts.append("required")
        if self.has_default:
            parts.append(f"default {_show(self.default)}")
        return "; ".join(parts)


def _show(value: Any) -> str:
    """A value as it would be typed: JSON, except bare strings without odd characters."""
    if isinstance(value, str) and value and value.strip() == value and "," not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def resolve(node: Any, root: Mapping[str, Any], _seen: frozenset[str] = frozenset()) -> dict:
    """``node`` with a local ``$ref`` followed (its own keys win over the target's)."""
    if not isinstance(node, Mapping):
        return {}
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#") or ref in _seen:
        return dict(node)
    target: Any = root
    for part in ref.lstrip("#").strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        target = target.get(part) if isinstance(target, Mapping) else None
    merged = resolve(target, root, _seen | {ref})
    merged.update({k: v for k, v in node.items() if k != "$ref"})
    return merged


def _type_words(node: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if isinstance(kind, str):
        if kind == "array":
            items = resolve(node.get("items"), root)
            inner = _type_words(items, root) if items else ""
            return f"array of {inner}" if inner and "|" not in inner else "array"
        return kind
    for key in ("oneOf", "anyOf"):
        options = node.get(key)
        if isinstance(options, list):
            words = [_type_words(resolve(o, root), root) for o in options]
            unique = list(dict.fromkeys(w for w in words if w))
            return " | ".join(unique)
    if "enum" in node:
        kinds = {type(v).__name__ for v in node["enum"]}
        return {"str": "string", "int": "integer", "float": "number",
                "bool": "boolean"}.get(kinds.pop(), "") if len(kinds) == 1 else ""
    if "const" in node:
        return "constant"
    if "properties" in node:
        return "object"
    return ""


def _limits(node: Mapping[str, Any]) -> str:
    words: list[str] = []
    pairs = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"),
             ("exclusiveMaximum", "<"))
    words += [f"{sign} {node[key]}" for key, sign in pairs if key in node]
    low, high = node.get("minLength"), node.get("maxLength")
    if low is not None and low == high:
        words.append(f"{low} character{'s' if low != 1 else ''}")
    else:
        if low and low > 1:
            words.append(f"at least {low} characters")
        if high is not None:
            words.append(f"at most {high} characters")
    if node.get("minItems"):
        words.append(f"at least {node['minItems']} item{'s' if node['minItems'] != 1 else ''}")
    if isinstance(node.get("pattern"), str):
        words.append(f"matching {node['pattern']}")
    return ", ".join(words)


def section_docs(section: str, schema: Mapping[str, Any],
                 given: Mapping[str, Any]) -> list[ParamDoc]:
    """The params one section's schema declares, with ``given`` (the template's values) as
    their defaults."""
    root = resolve(schema, schema)
    props = root.get("properties")
    if not isinstance(props, Mapping):
        return []
    required = set(root.get("required") or ())
    docs = []
    for name, raw in props.items():
        node = resolve(raw, schema)
        examples = node.get("examples")
        has_default = name in given or "default" in node
        docs.append(ParamDoc(
            section=section,
            name=str(name),
            type=_type_words(node, schema),
            description=" ".join(str(node.get("description") or "").split()),
            required=name in required,
            has_default=has_default,
            default=given[name] if name in given else node.get("default"),
            allowed=tuple(node["enum"]) if isinstance(node.get("enum"), list) else (),
            limits=_limits(node),
            examples=tuple(examples) if isinstance(examples, list) else (),
        ))
    return docs


def schemas_of(template: Template) -> dict[str, dict[str, Any]]:
    """The template's params schemas by section (``{}`` when the server sent none)."""
    raw = getattr(template, "raw", None) or {}
    for key in ("paramsSchema", "params_schema", "schemas"):
        value = raw.get(key)
        if isinstance(value, Mapping):
            return {k: dict(v) for k, v in value.items() if isinstance(v, Mapping)}
    return {}


def param_docs(template: Template) -> list[ParamDoc]:
    """Every param of every section, partitioner first, in each schema's order."""
    schemas = schemas_of(template)
    params = template.params or {}
    docs: list[ParamDoc] = []
    for section in SECTIONS:
        if section in schemas:
            given = params.get(section) if isinstance(params.get(section), Mapping) else {}
            docs += section_docs(section, schemas[section], given or {})
    return docs


def _section_note(template: Template, section: str) -> str:
    """The schema's own title/description of a section (e.g. how its params combine)."""
    schema = schemas_of(template).get(section) or {}
    return " ".join(str(schema.get("description") or "").split())


def _example_value(doc: ParamDoc) -> Any:
    if doc.has_default:
        return doc.default
    if doc.examples:
        return doc.examples[0]
    if doc.allowed:
        return doc.allowed[0]
    return {"integer": 1, "number": 1.0, "boolean": True, "string": "..."}.get(doc.type, "...")


def example_cell(template: Template, variable: str = "job") -> str:
    """A ``%%bytenite`` cell that runs ``template`` with its defaults (and a value for every
    required param), ready to copy. Optional params without a default are shown as comments
    with an example value; the data source is a ``$data`` placeholder, said so in a comment."""
    import yaml

    docs = param_docs(template)
    given = template.params or {}
    lines = [f"%%bytenite {variable} --wait",
             yaml.safe_dump({"templateId": template.id}, sort_keys=False).rstrip("\n")]
    if not template.data_source:
        lines.append("source: $data   # a variable holding a URL or a local path (uploaded "
                     "for you)")
    sections: list[str] = []
    any_values = False
    for section in SECTIONS:
        values = dict(given.get(section) or {}) if isinstance(given.get(section), Mapping) \
            else {}
        mine = [d for d in docs if d.section == section]
        for doc in mine:
            if doc.has_default or doc.required:
                values.setdefault(doc.name, _example_value(doc))
        hints = [d for d in mine if d.name not in values and (d.examples or d.allowed)]
        if not values and not hints:
            continue
        any_values = any_values or bool(values)
        body = [f"  {section}:" if values else f"  # {section}:"]
        for key, value in values.items():
            dumped = yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True,
                                    default_flow_style=False).rstrip("\n")
            body += ["    " + line for line in dumped.split("\n")]
        for doc in hints:
            dumped = yaml.safe_dump({doc.name: _example_value(doc)}, allow_unicode=True,
                                    sort_keys=False, default_flow_style=True,
                                    width=1000).strip()[1:-1]
            body.append(f"    # {dumped}")
        sections += body
    if sections:
        lines += ["params:" if any_values else "# params:", *sections]
    return "\n".join(lines) + "\n"


def _engine_line(template: Template, section: str) -> tuple[str, str]:
    tag = getattr(template, section, None) or ""
    info = (getattr(template, "engines", None) or {}).get(section) or {}
    return tag, " ".join(str(info.get("description") or "").split())


def _config_text(template: Template) -> str:
    config = template.config or {}
    shown = []
    for key in ("taskTimeout", "jobTimeout", "maxTaskRetries"):
        value = config.get(key)
        if value is not None and value != "":
            unit = " s" if key.endswith("Timeout") else ""
            shown.append(f"{key} {value}{unit}")
    return ", ".join(shown)


def render_text(template: Template) -> str:
    """The description as plain text, wrapped, nothing cut."""
    wrap = textwrap.TextWrapper(width=_WIDTH, break_long_words=False, break_on_hyphens=False)
    lines = [f"Template {template.id}"]
    if template.description:
        lines += wrap.wrap(template.description)
    lines.append("")
    engines = [(section, *_engine_line(template, section)) for section in SECTIONS]
    width = max(len(tag) for _, tag, _ in engines)
    for section, tag, description in engines:
        head = f"  {section:<11} {tag:<{width}}"
        lines += textwrap.wrap(f"{head}  {description}" if description else head,
                               width=_WIDTH, subsequent_indent=" " * (len(head) + 2),
                               break_long_words=False)
    docs = param_docs(template)
    lines.append("")
    if not docs:
        lines.append("Params: none declared (no schema.json); any params are passed through "
                     "unchecked.")
    else:
        lines.append("Params (--param SECTION.KEY=VALUE, or params: in a %%bytenite cell):")
    for section in SECTIONS:
        mine = [d for d in docs if d.section == section]
        if not mine:
            continue
        lines.append(f"  {section}")
        note = _section_note(template, section)
        if note:
            lines += textwrap.wrap(note, width=_WIDTH - 4, initial_indent="    ",
                                   subsequent_indent="    ", break_long_words=False)
        for doc in mine:
            lines += textwrap.wrap(f"{doc.name}: {doc.summary()}", width=_WIDTH - 4,
                                   initial_indent="    ", subsequent_indent="      ",
                                   break_long_words=False)
            if doc.description:
                lines += textwrap.wrap(doc.description, width=_WIDTH - 6,
                                       initial_indent="      ", subsequent_indent="      ",
                                       break_long_words=False)
            if doc.examples:
                lines.append("      e.g. " + ", ".join(_show(x) for x in doc.examples[:3]))
    config = _config_text(template)
    if config:
        lines += ["", f"Config: {config}"]
    if template.unknown_keys:
        lines += ["", f"Unknown keys, ignored by the server: {', '.join(template.unknown_keys)}"]
    lines += ["", "Example:", example_cell(template).rstrip("\n")]
    return "\n".join(lines)


def _cell(text: str, style: str = "") -> str:
    return f'<td style="text-align:left;vertical-align:top;{style}">{text}</td>'


def render_html(template: Template) -> str:
    """The description as HTML (inline styles only: it survives sanitisers and nbconvert)."""
    e = html.escape
    out = [f'<div class="bn-template" data-template="{e(template.id)}" '
           'style="font-family:system-ui,sans-serif;font-size:13px;max-width:900px">',
           f'<div style="font-size:15px"><b>{e(template.id)}</b></div>']
    if template.description:
        out.append(f"<div>{e(template.description)}</div>")
    rows = []
    for section in SECTIONS:
        tag, description = _engine_line(template, section)
        rows.append("<tr>" + _cell(f"<b>{e(section)}</b>") + _cell(f"<code>{e(tag)}</code>")
                    + _cell(e(description), "white-space:normal") + "</tr>")
    out.append('<table class="bn-template-engines" style="margin:6px 0">' + "".join(rows)
               + "</table>")
    docs = param_docs(template)
    if not docs:
        out.append(f'<div style="color:{_MUTED}">No params declared (no schema.json): any '
                   "params are passed through unchecked.</div>")
    for section in SECTIONS:
        mine = [d for d in docs if d.section == section]
        if not mine:
            continue
        note = _section_note(template, section)
        out.append(f'<div style="margin-top:8px"><b>{e(section)} params</b>'
                   + (f' <span style="color:{_MUTED}">{e(note)}</span>' if note else "")
                   + "</div>")
        head = "".join(f'<th style="text-align:left">{h}</th>' for h in
                       ("param", "type", "default", "allowed", "required", "description"))
        body = []
        for doc in mine:
            allowed = ", ".join(_show(v) for v in doc.allowed)
            kind = doc.type + (f" ({doc.limits})" if doc.limits else "")
            description = e(doc.description)
            if doc.examples:
                description += (f'<br><span style="color:{_MUTED}">e.g. '
                                + e(", ".join(_show(x) for x in doc.examples[:3]))
                                + "</span>")
            body.append(
                f'<tr class="bn-param" data-section="{e(section)}" data-param="{e(doc.name)}">'
                + _cell(f"<code>{e(doc.name)}</code>") + _cell(e(kind))
                + _cell(f"<code>{e(_show(doc.default))}</code>" if doc.has_default else "")
                + _cell(e(allowed)) + _cell("yes" if doc.required else "")
                + _cell(description, "white-space:normal;min-width:16em") + "</tr>")
        out.append(f'<table class="bn-template-params"><thead><tr>{head}</tr></thead>'
                   f"<tbody>{''.join(body)}</tbody></table>")
    config = _config_text(template)
    if config:
        out.append(f'<div style="margin-top:6px">Config: {e(config)}</div>')
    if template.unknown_keys:
        out.append(f'<div style="margin-top:6px">Unknown keys, ignored by the server: '
                   f"{e(', '.join(template.unknown_keys))}</div>")
    out.append('<div style="margin-top:8px"><b>Example</b> '
               f'<span style="color:{_MUTED}">(copy into a cell)</span></div>'
               f'<pre class="bn-template-example" style="margin:2px 0;padding:6px;'
               f'border:1px solid #d0d7de;border-radius:4px">{e(example_cell(template))}</pre>')
    out.append("</div>")
    return "".join(out)


def section_param_names(template: Template) -> dict[str, list[str]]:
    """``{section: [param names]}`` for every section with a schema (for listings)."""
    names: dict[str, list[str]] = {}
    for doc in param_docs(template):
        names.setdefault(doc.section, []).append(doc.name)
    return names


def describe_params(template: Template, sections: Sequence[str] = SECTIONS) -> str:
    """``partitioner: rows_per_chunk, format · app: op, where`` (sections with a schema)."""
    names = section_param_names(template)
    return " · ".join(f"{s}: {', '.join(names[s])}" for s in sections if names.get(s))
