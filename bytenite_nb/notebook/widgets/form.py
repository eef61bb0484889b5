"""JobForm: pick a template, a data source and params, then Run or copy the equivalent cell.

Built from stock ipywidgets only, so it works wherever widgets work at all (VS Code, Colab
without custom widget managers). When the template's app has a JSON Schema for its params,
one input per property is generated with its validation message beside it (jsonschema,
Draft 2020-12); otherwise params are edited as JSON. "Copy as %%bytenite cell" writes the
equivalent cell, so what was clicked can be re-run and reviewed as code.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as w
import yaml

if TYPE_CHECKING:  # pragma: no cover
    from bytenite_nb.api.client import Client
    from bytenite_nb.api.jobs import Job
    from bytenite_nb.api.models import Template

SECTIONS = ("app", "partitioner", "assembler")
SOURCE_KINDS = ("template default", "URL", "file upload", "bypass")
_SIMPLE = {"string", "integer", "number", "boolean"}
_URL = re.compile(r"^https?://\S+$")


def template_schemas(client: Any, template: Template | None) -> dict[str, dict[str, Any]]:
    """The params schemas a template exposes, per section (``{"app": {...}}``), if any.

    ByteNite's API dropped its schema endpoint in 2025; a server may still send the schemas
    with the template (``schemas``/``paramsSchema`` per section, or ``schema`` for the app;
    ByteNite Local sends ``paramsSchema``), or the client may offer ``template_schema(id)``.
    Nothing found: the form falls back to JSON.
    """
    if template is None:
        return {}
    raw = getattr(template, "raw", {}) or {}
    for key in ("schemas", "paramsSchema", "params_schema"):
        value = raw.get(key)
        if isinstance(value, Mapping):
            return {k: dict(v) for k, v in value.items()
                    if k in SECTIONS and isinstance(v, Mapping)}
    if isinstance(raw.get("schema"), Mapping):
        return {"app": dict(raw["schema"])}
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


class _Field:
    """One generated input for a schema property, with its validation message."""

    def __init__(self, name: str, prop: Mapping[str, Any], required: bool,
                 default: Any, on_change: Callable[[], None]) -> None:
        self.name = name
        self.prop = prop
        kind = prop.get("type")
        self.kind = kind if isinstance(kind, str) and kind in _SIMPLE else "json"
        if "enum" in prop and all(isinstance(v, (str, int, float, bool)) for v in prop["enum"]):
            self.kind = "enum"
        desc = str(prop.get("description", ""))
        label = name + (" *" if required else "")
        placeholder = ""
        if isinstance(prop.get("examples"), list) and prop["examples"]:
            placeholder = "e.g. " + ", ".join(str(x) for x in prop["examples"][:3])
        layout = w.Layout(width="320px")
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
                                     layout=w.Layout(width="320px", height="60px"))
        else:
            text = "" if default is None else str(default)
            self.widget = w.Text(value=text, placeholder=placeholder, layout=layout)
        self.widget.description_allow_html = False
        self.message = w.HTML("", layout=w.Layout(margin="0 0 0 8px"))
        label_widget = w.HTML(f"<b>{html.escape(label)}</b>",
                              layout=w.Layout(width="140px"))
        label_widget.tooltip = desc or None
        help_text = w.HTML(f'<span style="color:#656d76;font-size:11px">{html.escape(desc)}</span>'
                           if desc else "", layout=w.Layout(margin="0 0 0 8px"))
        self.row = w.HBox([label_widget, self.widget, self.message, help_text])
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
        self.message.value = (f'<span class="bn-field-error" style="color:#cf222e">'
                              f"{html.escape(message)}</span>" if message else "")


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
        self.template = w.Dropdown(options=options, description="Template",
                                   layout=w.Layout(width="520px"))
        if template is not None:
            self.template.value = template
        self.name = w.Text(description="Name", placeholder="optional",
                           layout=w.Layout(width="520px"))
        self.source_kind = w.ToggleButtons(options=SOURCE_KINDS, description="Data",
                                           style={"button_width": "120px"})
        self.url = w.Text(description="URL", placeholder="https://…",
                          layout=w.Layout(width="520px"))
        self.upload = w.FileUpload(description="Choose file", multiple=False)
        self.source_message = w.HTML("")
        self.source_box = w.VBox([])
        self.params_box = w.VBox([])
        self.params_json = w.Textarea(description="Params", placeholder='{"app": {}}',
                                      layout=w.Layout(width="520px", height="110px"))
        self.params_message = w.HTML("")
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.copy_button = w.Button(description="Copy as %%bytenite cell", icon="copy",
                                    layout=w.Layout(width="220px"))
        self.status = w.HTML("")
        self.output = w.Output()
        super().__init__([
            w.HTML("<b>New ByteNite job</b>"),
            self.template, self.name, self.source_kind, self.source_box,
            self.params_box, w.HBox([self.run_button, self.copy_button]), self.status,
            self.output,
        ])
        self.add_class("bn-job-form")
        self.template.observe(lambda _c: self._build_params(), names="value")
        self.source_kind.observe(lambda _c: self._build_source(), names="value")
        for widget in (self.url, self.upload, self.params_json):
            widget.observe(lambda _c: self.validate(), names="value")
        self.run_button.on_click(lambda _b: self.run())
        self.copy_button.on_click(lambda _b: self._copy())
        self._build_source()
        self._build_params()

    # -- building -------------------------------------------------------------------------------

    def _build_source(self) -> None:
        kind = self.source_kind.value
        children: list[w.Widget] = []
        if kind == "URL":
            children = [self.url]
        elif kind == "file upload":
            children = [self.upload]
        self.source_box.children = [*children, self.source_message]
        self.validate()

    def _build_params(self) -> None:
        template = self.templates.get(self.template.value or "")
        self._schemas = dict(template_schemas(self.client, template))
        self._schemas.update(self._extra_schemas.get(self.template.value or "", {}))
        defaults = dict((template.params if template else None) or {})
        self._fields = {}
        rows: list[w.Widget] = []
        for section in SECTIONS:
            schema = self._schemas.get(section)
            props = schema.get("properties") if isinstance(schema, Mapping) else None
            if not isinstance(props, Mapping) or not props:
                continue
            required = set(schema.get("required", ()))
            given = defaults.get(section) or {}
            fields = {
                name: _Field(name, prop if isinstance(prop, Mapping) else {}, name in required,
                             given.get(name), self.validate)
                for name, prop in props.items()
            }
            self._fields[section] = fields
            title = schema.get("title") or f"{section} params"
            rows.append(w.HTML(f"<i>{html.escape(str(title))}</i>"))
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
            if not _URL.match(url):
                return None, "enter an http(s) URL"
            return url, None
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

    def _copy(self) -> None:
        self.output.outputs = ()
        self.output.append_stdout(self.cell_text())

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
