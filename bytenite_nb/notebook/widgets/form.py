"""JobForm: pick a template, a data source and params, then Run or copy the equivalent cell.

Built from stock ipywidgets, so it works wherever widgets work at all (VS Code, Colab
without custom widget managers). When a template's engines have a JSON Schema for their
params, one input per property is generated: a text box for strings and numbers (a ``$ref``
is followed to find the type), a menu for enums and booleans, a JSON box only for objects and
arrays; each field has its schema's description, examples and limits under it and its
validation message (jsonschema, Draft 2020-12) under the input. Labels keep their whole text
and the inputs of a section line up. Engines without a schema are edited as JSON.
"Copy as %%bytenite cell" puts the equivalent cell, data source included, on the clipboard
(from the browser: :class:`~bytenite_nb.notebook.widgets.copy.CopyButton`, which shows the
cell selected when the browser refuses), so what was clicked can be re-run as code.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import yaml

from bytenite_nb.api import checks
from bytenite_nb.api.template_doc import ParamDoc, resolve, section_docs

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.jobs import Job
    from bytenite_nb.api.models import Template

SECTIONS = checks.SECTIONS
SOURCE_KINDS = ("template default", "URL", "local file", "file upload", "bypass")
_SIMPLE = {"string", "integer", "number", "boolean"}
_URL = re.compile(r"https?://\S+")
_MUTED = "#656d76"
#: Width of the top-level labels (Template, Name, Data, ...), so their inputs line up.
_LABEL = {"description_width": "6em"}


def template_schemas(client: Any, template: Template | None) -> dict[str, dict[str, Any]]:
    """The params schemas a template exposes, per section (``{"app": {...}}``), if any.

    ByteNite's API dropped its schema endpoint in 2025; a server may still send the schemas
    with the template (read as the client-side checks read them: ByteNite Local sends
    ``paramsSchema``), or the client may offer ``template_schema(id)``. Nothing found: the
    form falls back to JSON.
    """
    if template is None:
        return {}
    sent = checks.template_schemas(template)
    if sent:
        return sent
    getter = getattr(client, "template_schema", None)
    if callable(getter):
        try:
            found = getter(template.id)
        except Exception:  # the fallback editor is always available
            return {}
        if isinstance(found, Mapping):
            if set(found) <= set(SECTIONS):
                return {k: dict(v) for k, v in found.items() if isinstance(v, Mapping)}
            return {"app": dict(found)}
    return {}


def _field_kind(prop: Mapping[str, Any]) -> str:
    """``enum``, ``boolean``, ``string``, ``integer``, ``number``, or ``json`` (objects,
    arrays, and anything that may be more than one type)."""
    if "enum" in prop and all(isinstance(v, (str, int, float, bool)) for v in prop["enum"]):
        return "enum"
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if isinstance(kind, str) and kind in _SIMPLE:
        return kind
    if kind is None and "const" in prop and isinstance(prop["const"], str):
        return "string"
    return "json"


def _help_html(doc: ParamDoc | None, kind: str) -> str:
    """The help under a field: description, then type/limits/default, then examples."""
    if doc is None:
        return ""
    e = html.escape
    parts = []
    if doc.description:
        parts.append(e(doc.description))
    facts = doc.type + (f" ({doc.limits})" if doc.limits else "") if doc.type else doc.limits
    if kind == "json" and facts:
        facts += ", as JSON"
    if doc.has_default:
        facts += ("; " if facts else "") + f"default {json.dumps(doc.default)}"
    if facts:
        parts.append(f'<span style="opacity:0.85">{e(facts)}</span>')
    if doc.examples:
        shown = ", ".join(json.dumps(x) if kind == "json" or not isinstance(x, str) else x
                          for x in doc.examples[:3])
        parts.append(f"e.g. <code>{e(shown)}</code>")
    return ('<div class="bn-field-help" style="color:var(--jp-ui-font-color2, #656d76);'
            'font-size:11px;line-height:1.35;white-space:normal">'
            + "<br>".join(parts) + "</div>")


class _Field:
    """One generated input for a schema property: label, input, message, help."""

    def __init__(self, name: str, prop: Mapping[str, Any], required: bool,
                 default: Any, on_change: Callable[[], None], *,
                 doc: ParamDoc | None = None, label_width: str = "12em") -> None:
        self.name = name
        self.prop = prop
        self.doc = doc
        self.kind = _field_kind(prop)
        placeholder = ""
        if isinstance(prop.get("examples"), list) and prop["examples"]:
            placeholder = "e.g. " + ", ".join(
                json.dumps(x) if self.kind == "json" else str(x) for x in prop["examples"][:2])
        layout = w.Layout(width="100%", max_width="420px")
        self.widget: w.Widget
        if self.kind == "enum":
            options = [("(unset)", None)] + [(str(v), v) for v in prop["enum"]]
            self.widget = w.Dropdown(options=options, value=default if default in prop["enum"]
                                     else None, layout=layout)
        elif self.kind == "boolean":
            value = default if isinstance(default, bool) else None
            self.widget = w.Dropdown(options=[("(unset)", None), ("true", True), ("false", False)],
                                     value=value, layout=layout)
        elif self.kind == "json":
            text = "" if default is None else json.dumps(default)
            self.widget = w.Textarea(value=text, placeholder=placeholder or "JSON",
                                     layout=w.Layout(width="100%", max_width="420px",
                                                     height="60px"))
        else:
            text = "" if default is None else str(default)
            self.widget = w.Text(value=text, placeholder=placeholder, layout=layout)
        self.widget.description_allow_html = False
        self.widget.add_class(f"bn-field-{self.kind}")
        self.message = w.HTML("")
        mark = " *" if required else ""
        self.label = w.HTML(
            f'<div class="bn-field-label" style="white-space:normal;overflow-wrap:anywhere;'
            f'line-height:1.3;padding-top:4px"><b>{html.escape(name)}</b>{mark}</div>',
            layout=w.Layout(width=label_width, min_width=label_width))
        self.label.tooltip = (doc.description if doc else "") or None
        self.help = w.HTML(_help_html(doc, self.kind))
        self.row = w.HBox([self.label, w.VBox([self.widget, self.message, self.help],
                                              layout=w.Layout(flex="1 1 auto"))],
                          layout=w.Layout(align_items="flex-start", margin="2px 0"))
        self.row.add_class("bn-field")
        self.widget.observe(lambda _c: on_change(), names="value")

    def value(self) -> tuple[Any, str | None]:
        """(value or ``None`` when unset, parse error message)."""
        raw = self.widget.value
        if self.kind in ("enum", "boolean"):
            return raw, None
        text = str(raw).strip()
        if text == "":
            return None, None
        if self.kind == "string":
            return str(raw), None
        if self.kind == "integer":
            try:
                return int(text), None
            except ValueError:
                return None, "must be a whole number"
        if self.kind == "number":
            try:
                return float(text), None
            except ValueError:
                return None, "must be a number"
        try:
            return json.loads(text), None
        except json.JSONDecodeError as exc:
            return None, f"invalid JSON: {exc.msg}"

    def show(self, message: str | None) -> None:
        self.message.value = (f'<div class="bn-field-error" style="color:#cf222e;'
                              f'font-size:12px">{html.escape(message)}</div>'
                              if message else "")


class JobForm(w.VBox):
    """A form to configure and launch a job; see the module docstring.

    ``JobForm(client)`` lists the client's templates (``template="id"`` selects one).
    ``schemas`` maps a template id to per-section JSON Schemas (``{"app": {...}}``) when the
    server does not expose them.
    ``form.cell_text()`` is the equivalent ``%%bytenite`` cell; ``form.run()`` submits.
    """

    def __init__(self, client: Client | None = None, *, template: str | None = None,
                 schemas: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        if client is None:
            from bytenite_nb.api.client import Client

            client = Client()
        self.client = client
        self._extra_schemas = {k: dict(v) for k, v in (schemas or {}).items()}
        self.templates: dict[str, Template] = {t.id: t for t in client.templates()}
        if template is not None and template not in self.templates:
            known = ", ".join(sorted(self.templates)) or "none"
            raise ValueError(f"no template {template!r} on this server; templates: {known}")
        self.job: Job | None = None
        self.monitor: Any = None
        self._fields: dict[str, dict[str, _Field]] = {}
        self._schemas: dict[str, dict[str, Any]] = {}
        self._submit_callbacks: list[Callable[[Job], None]] = []

        options = [(f"{t.id} — {t.description}" if t.description else t.id, t.id)
                   for t in self.templates.values()]
        self.template = w.Dropdown(options=options, description="Template", style=_LABEL,
                                   layout=w.Layout(width="640px"))
        if template is not None:
            self.template.value = template
        self.template_help = w.HTML("")
        self.name = w.Text(description="Name", placeholder="optional", style=_LABEL,
                           layout=w.Layout(width="640px"))
        self.source_kind = w.ToggleButtons(options=SOURCE_KINDS,
                                           style={"button_width": "auto"})
        # ToggleButtons put their description above the buttons: a label of the others'
        # width keeps "Data" in the same column as "Template" and "Name".
        data_row = w.HBox([w.HTML('<div style="text-align:right;padding:4px 8px 0 0">Data</div>',
                                  layout=w.Layout(width=_LABEL["description_width"],
                                                  min_width=_LABEL["description_width"])),
                           self.source_kind])
        self.url = w.Text(description="URL", placeholder="https://…", style=_LABEL,
                          layout=w.Layout(width="640px"))
        self.path = w.Text(description="Path", style=_LABEL, layout=w.Layout(width="640px"),
                           placeholder="a file on this kernel's machine, e.g. data/sales.csv")
        self.upload = w.FileUpload(description="Choose file", multiple=False)
        self.source_message = w.HTML("")
        self.source_box = w.VBox([])
        self.params_box = w.VBox([])
        self.params_json = w.Textarea(description="Params", placeholder='{"app": {}}',
                                      style=_LABEL,
                                      layout=w.Layout(width="640px", height="110px"))
        self.params_message = w.HTML("")
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        from bytenite_nb.notebook.widgets.copy import CopyButton

        #: Copies :meth:`cell_text` from the browser (kept current on every change).
        self.copy_button = CopyButton(label="Copy as %%bytenite cell")
        self.status = w.HTML("")
        self.output = w.Output()
        super().__init__([
            w.HTML("<b>New ByteNite job</b>"),
            self.template, self.template_help, self.name, data_row, self.source_box,
            self.params_box, w.HBox([self.run_button, self.copy_button],
                                    layout=w.Layout(align_items="flex-start")),
            self.status, self.output,
        ])
        self.add_class("bn-job-form")
        self.template.observe(lambda _c: self._build_params(), names="value")
        self.source_kind.observe(lambda _c: self._build_source(), names="value")
        for widget in (self.url, self.path, self.upload, self.params_json, self.name):
            widget.observe(lambda _c: self.validate(), names="value")
        self.run_button.on_click(lambda _b: self.run())
        self._build_source()
        self._build_params()

    # -- building -------------------------------------------------------------------------------

    def _build_source(self) -> None:
        kind = self.source_kind.value
        children: list[w.Widget] = []
        if kind == "URL":
            children = [self.url]
        elif kind == "local file":
            children = [self.path]
        elif kind == "file upload":
            children = [self.upload]
        self.source_box.children = [*children, self.source_message]
        self.validate()

    def _build_params(self) -> None:
        template = self.templates.get(self.template.value or "")
        self._schemas = dict(template_schemas(self.client, template))
        self._schemas.update(self._extra_schemas.get(self.template.value or "", {}))
        defaults = dict((template.params if template else None) or {})
        self.template_help.value = (
            f'<div style="color:{_MUTED};margin:0 0 4px 6.5em;white-space:normal">'
            f"{html.escape(template.description)}</div>"
            if template is not None and template.description else "")
        self._fields = {}
        rows: list[w.Widget] = []
        for section in SECTIONS:
            schema = self._schemas.get(section)
            props = schema.get("properties") if isinstance(schema, Mapping) else None
            if not isinstance(props, Mapping) or not props:
                continue
            required = set(schema.get("required", ()))
            given = defaults.get(section) or {}
            docs = {d.name: d for d in section_docs(section, schema, given)}
            # One label width per section, from its longest name: inputs line up, nothing cut.
            longest = max(len(str(n)) + (2 if n in required else 0) for n in props)
            width = f"{min(max(longest, 8), 24) + 2}ch"
            fields = {
                name: _Field(name, resolve(prop, schema), name in required, given.get(name),
                             self.validate, doc=docs.get(name), label_width=width)
                for name, prop in props.items()
            }
            self._fields[section] = fields
            title = schema.get("title") or f"{section} params"
            note = schema.get("description")
            rows.append(w.HTML(
                f"<div style=\"margin-top:6px\"><i>{html.escape(str(title))}</i>"
                + (f' <span style="color:{_MUTED}">{html.escape(str(note))}</span>'
                   if note else "") + "</div>"))
            rows.extend(f.row for f in fields.values())
        # Sections without a schema (all of them, for most templates) are edited as JSON.
        free = {k: v for k, v in defaults.items() if k not in self._fields}
        self.params_json.value = json.dumps(free, indent=1) if free else ""
        if len(self._fields) < len(SECTIONS):
            label = "other params (JSON)" if self._fields else "params (JSON)"
            rows.append(w.HTML(f'<span style="color:#656d76">{label}: '
                               '{"app": {...}, "partitioner": {...}, "assembler": {...}}</span>'))
            rows.extend([self.params_json, self.params_message])
        self.params_box.children = rows
        self.validate()

    # -- values and validation --------------------------------------------------------------

    def params(self) -> tuple[dict[str, Any], list[str]]:
        """The params the form would send, and the problems found (empty list: valid)."""
        problems: list[str] = []
        params: dict[str, Any] = {}
        text = self.params_json.value.strip()
        self.params_message.value = ""
        if text:
            try:
                free = json.loads(text)
            except json.JSONDecodeError as exc:
                free = {}
                problems.append(f"params JSON: {exc.msg} (line {exc.lineno})")
            if not isinstance(free, dict):
                problems.append("params JSON must be an object like {\"app\": {...}}")
                free = {}
            unknown = sorted(set(free) - set(SECTIONS) - {"preset"})
            if unknown:
                problems.append(f"params JSON: unknown section(s) {unknown}; use app, "
                                "partitioner, assembler")
            for key, value in free.items():
                if key in SECTIONS and not isinstance(value, dict):
                    problems.append(f"params JSON: {key} must be an object")
            params.update({k: v for k, v in free.items() if k not in self._fields})
            if problems:
                self.params_message.value = "".join(
                    f'<div style="color:#cf222e">{html.escape(p)}</div>' for p in problems)
        for section, fields in self._fields.items():
            values: dict[str, Any] = {}
            messages: dict[str, str] = {}
            for name, field_ in fields.items():
                value, error = field_.value()
                if error:
                    messages[name] = error
                elif value is not None:
                    values[name] = value
            for name, message in _schema_errors(self._schemas[section], values):
                if name in fields:
                    messages.setdefault(name, message)
                else:
                    problems.append(f"{section}: {message}")
            for name, field_ in fields.items():
                field_.show(messages.get(name))
            problems.extend(f"{section}.{n}: {m}" for n, m in messages.items())
            if values:
                params[section] = values
        return params, problems

    def source(self) -> tuple[Any, str | None]:
        """(what ``client.submit(source=...)`` takes, or ``None`` for the default; problem)."""
        kind = self.source_kind.value
        if kind == "URL":
            url = self.url.value.strip()
            if not _URL.fullmatch(url):
                return None, "enter an http(s) URL"
            return url, None
        if kind == "local file":
            text = self.path.value.strip()
            if not text:
                return None, "enter the path of a file on this kernel's machine"
            path = Path(text).expanduser()
            if not path.is_file():
                return None, f"no file at {text} (relative paths start at {Path.cwd()})"
            return path, None
        if kind == "file upload":
            files = self.upload.value
            if not files:
                return None, "choose a file to upload"
            return bytes(files[0]["content"]), None
        if kind == "bypass":
            return "bypass", None
        return None, None

    def validate(self) -> list[str]:
        """Re-check every input, update the messages, enable Run only when all is valid.

        A template that needs input data cannot run on its default without one: Run stays
        disabled and the form says so in the words ``%bytenite run`` uses.
        """
        problems: list[str] = []
        if not self.template.value:
            problems.append("no template available")
        source, source_problem = self.source()
        if source_problem is None:
            source_problem = self._input_problem(source)
        self.source_message.value = (
            f'<span class="bn-field-error" style="color:var(--jp-error-color1, #cf222e)">'
            f"{html.escape(source_problem)}</span>" if source_problem else "")
        if source_problem:
            problems.append(source_problem)
        problems.extend(self.params()[1])
        self.run_button.disabled = bool(problems)
        self.copy_button.text = self.cell_text()
        return problems

    def _input_problem(self, source: Any) -> str | None:
        """The needs-input message when the chosen source gives a template that needs input
        data none (the template default without a default source, or bypass)."""
        from bytenite_nb.api import checks
        from bytenite_nb.api.errors import InputError

        template = self.templates.get(self.template.value or "")
        if template is None:
            return None
        data_source = {"dataSourceDescriptor": "bypass"} if source == "bypass" else None
        try:
            checks.check_input(template, data_source, uploading=source is not None
                               and source != "bypass", phrasing=checks.FORM)
        except InputError as exc:
            return str(exc)
        return None

    # -- actions --------------------------------------------------------------------------------

    def on_submit(self, callback: Callable[[Job], None]) -> None:
        """Call ``callback(job)`` after Run submitted a job."""
        self._submit_callbacks.append(callback)

    def run(self) -> Job | None:
        """Submit the job and show its live monitor below the form."""
        problems = self.validate()
        if problems:
            self.status.value = _error_html("fix first: " + "; ".join(problems))
            return None
        source, _ = self.source()
        params, _ = self.params()
        self.status.value = "submitting…"
        try:
            job = self.client.submit(self.template.value, source=source, params=params or None,
                                     name=self.name.value.strip() or None)
        except Exception as exc:
            self.status.value = _error_html(f"could not submit: {exc}")
            return None
        from bytenite_nb.notebook.widgets.monitor import JobMonitor

        self.job = job
        self.monitor = JobMonitor(job)
        self.status.value = f"submitted job <code>{html.escape(job.id)}</code>"
        self.output.outputs = ()
        self.output.append_display_data(self.monitor)
        for callback in self._submit_callbacks:
            callback(job)
        return job

    def cell_text(self, variable: str = "job") -> str:
        """The ``%%bytenite`` cell that submits the same job."""
        spec: dict[str, Any] = {"templateId": self.template.value}
        if self.name.value.strip():
            spec["name"] = self.name.value.strip()
        kind = self.source_kind.value
        comment = ""
        if kind == "URL":
            spec["source"] = self.url.value.strip()
        elif kind == "local file" and self.path.value.strip():
            spec["source"] = self.path.value.strip()
        elif kind == "bypass":
            spec["source"] = "bypass"
        elif kind == "file upload" and self.upload.value:
            filename = str(self.upload.value[0]["name"])
            spec["source"] = filename
            comment = f"# source: save the uploaded file as {filename} next to the notebook\n"
        params, _ = self.params()
        if params:
            spec["params"] = params
        body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, default_flow_style=False)
        return f"%%bytenite {variable}\n{comment}{body}".rstrip("\n") + "\n"

    # -- reprs ----------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (f"JobForm(template={self.template.value!r}, source={self.source_kind.value!r}, "
                f"{len(self.templates)} templates)")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = repr(self)
            data["text/html"] = (
                "<div class=\"bn-static\"><b>ByteNite job form</b> (needs a live kernel with "
                "widgets). Equivalent cell:<pre>" + html.escape(self.cell_text()) + "</pre></div>"
            )
        return data


def _error_html(text: str) -> str:
    return f'<span style="color:#cf222e">{html.escape(text)}</span>'


def _schema_errors(schema: Mapping[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    """(property name or "", message) for every jsonschema error of ``values``."""
    from jsonschema import Draft202012Validator

    out: list[tuple[str, str]] = []
    for error in Draft202012Validator(schema).iter_errors(values):
        path = list(error.absolute_path)
        if path:
            out.append((str(path[0]), error.message))
        elif error.validator == "required":
            match = re.match(r"'([^']+)' is a required property", error.message)
            out.append((match.group(1) if match else "", "required"))
        else:
            out.append(("", error.message))
    return out
