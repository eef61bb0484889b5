"""Job specs: the body of a ``%%bytenite`` cell and the flags of ``%bytenite run``.

A spec is YAML or JSON (JSON is tried first when the body starts with ``{``)::

    templateId: hello-world-template
    name: shout {who}
    source: $data_url          # or dataSource: {dataSourceDescriptor: url, params: {...}}
    params:
      app: {case: upper}
    config: {taskTimeout: 60}

Placeholders ``{name}``, ``$name`` and ``${name}`` (dotted paths allowed: ``{cfg.rate}``) are
filled from the user's namespace *after* parsing, as structured values: a string that is exactly
one placeholder becomes the object itself (a dict stays a dict, a Path stays a Path); a
placeholder inside a longer string is replaced by ``str(value)``. Text is never substituted
before parsing, so a value can never inject YAML. ``{{name}}`` is a literal ``{name}`` and
``$$name`` a literal ``$name``. Keys are never filled. An undefined name is an error that says
where it was used.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from bytenite_nb import wire
from bytenite_nb.notebook.grammar import suggest

__all__ = [
    "JobSpec",
    "build_spec",
    "coerce_scalar",
    "fill_placeholders",
    "parse_spec_text",
    "resolve_text",
    "spec_from_cell",
    "spec_from_run_options",
    "to_json_compatible",
]

_PATH = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
# Escapes come first in the alternation so `$$x` and `{{x}}` are consumed before `$x`/`{x}`.
_TOKEN = re.compile(
    rf"(?P<dollar_escape>\$\$(?=[A-Za-z_{{]))"
    rf"|\{{\{{(?P<brace_escape>{_PATH})\}}\}}"
    rf"|\$\{{(?P<dollar_brace>{_PATH})\}}"
    rf"|\$(?P<dollar>{_PATH})"
    rf"|\{{(?P<brace>{_PATH})\}}"
)
_ESCAPE_HINT = "write {{name}} or $$name for literal text"

#: Spec keys (camelCase) and the aliases users may write instead.
_FIELDS = ("templateId", "name", "description", "dataSource", "dataDestination", "params",
           "config")
_ALIASES = {"template": "templateId", "source": "dataSource", "destination": "dataDestination"}


def _error(message: str) -> UsageError:
    return UsageError(f"job spec: {message}")


# --------------------------------------------------------------------------------------------
# Placeholders
# --------------------------------------------------------------------------------------------


def _lookup(path: str, namespace: Mapping[str, Any], where: str, token: str) -> Any:
    head, *rest = path.split(".")
    if head not in namespace:
        hint = suggest(head, [k for k in namespace if not k.startswith("_")])
        raise _error(
            f"{token} at {where}: name {head!r} is not defined.{hint} Define it in an "
            f"earlier cell, or {_ESCAPE_HINT}."
        )
    value = namespace[head]
    walked = head
    for attr in rest:
        if isinstance(value, Mapping) and attr in value:
            value = value[attr]
        elif hasattr(value, attr):
            value = getattr(value, attr)
        else:
            raise _error(
                f"{token} at {where}: {walked} ({type(value).__name__}) has no "
                f"attribute or key {attr!r}"
            )
        walked += "." + attr
    return value


def resolve_text(text: str, namespace: Mapping[str, Any], where: str = "the line") -> Any:
    """Fill the placeholders of one string.

    Exactly one placeholder: its object. Placeholders inside text: ``str()`` of each.
    No placeholder: the text with escapes undone.
    """
    whole = _TOKEN.fullmatch(text)
    if whole and not (whole.group("dollar_escape") or whole.group("brace_escape")):
        path = whole.group("dollar_brace") or whole.group("dollar") or whole.group("brace")
        return _lookup(path, namespace, where, text)

    def replace(match: re.Match[str]) -> str:
        if match.group("dollar_escape"):
            return "$"
        if match.group("brace_escape"):
            return "{" + match.group("brace_escape") + "}"
        path = match.group("dollar_brace") or match.group("dollar") or match.group("brace")
        return str(_lookup(path, namespace, where, match.group(0)))

    return _TOKEN.sub(replace, text)


def fill_placeholders(value: Any, namespace: Mapping[str, Any], where: str = "spec") -> Any:
    """Return ``value`` (parsed YAML/JSON) with every placeholder in a string value filled."""
    if isinstance(value, str):
        return resolve_text(value, namespace, where)
    if isinstance(value, Mapping):
        return {k: fill_placeholders(v, namespace, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(v, namespace, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


# --------------------------------------------------------------------------------------------
# Parsing YAML / JSON
# --------------------------------------------------------------------------------------------


def _yaml_loader() -> type:
    import yaml

    class SpecLoader(yaml.SafeLoader):
        """SafeLoader that refuses duplicate keys and reads ``{name}`` as a placeholder.

        In YAML, an unquoted ``{name}`` is a flow mapping ``{name: null}``; a user writing
        ``source: {data}`` means the placeholder, so a one-key flow mapping whose value is
        *absent* (not ``null``) is read back as the string ``"{data}"``.
        """

    def construct_mapping(loader: SpecLoader, node: yaml.MappingNode) -> Any:
        if node.flow_style and len(node.value) == 1:
            key, value = node.value[0]
            if (
                isinstance(key, yaml.ScalarNode) and key.style is None
                and re.fullmatch(_PATH, key.value)
                and isinstance(value, yaml.ScalarNode) and value.value == ""
                and value.start_mark.index == value.end_mark.index
            ):
                return "{" + key.value + "}"
        loader.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    mark = key_node.start_mark
                    raise _error(
                        f"key {key!r} appears twice (line {mark.line + 1}); keep one"
                    )
                seen.add(key)
        return loader.construct_mapping(node, deep=True)

    SpecLoader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    return SpecLoader


def _json_object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _error(f"key {key!r} appears twice; keep one")
        out[key] = value
    return out


def parse_spec_text(text: str) -> Any:
    """Parse a cell body as JSON (when it looks like JSON) or YAML. Raises ``UsageError``."""
    import yaml

    body = text.strip()
    if not body:
        raise _error(
            "the cell is empty; write at least `templateId: <template>` "
            "(see `%bytenite templates`)"
        )
    if body.startswith(("{", "[")):
        try:
            return json.loads(body, object_pairs_hook=_json_object_pairs)
        except json.JSONDecodeError:
            pass  # YAML flow style (`{templateId: x}`) is not JSON; YAML gets the last word
    try:
        return yaml.load(body, Loader=_yaml_loader())  # SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid syntax"
        raise _error(f"not valid YAML or JSON: {problem}{where}") from None
    except yaml.YAMLError as exc:
        raise _error(f"not valid YAML or JSON: {exc}") from None
    except RecursionError:
        raise _error("nested too deeply") from None


# --------------------------------------------------------------------------------------------
# Building the spec
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to create (and start) one job.

    ``data_source`` is the wire-form descriptor (``None``: the template's default). When the
    data is local, ``data_source`` is the ``file`` descriptor and ``upload`` the path or bytes
    to upload after the job is created. ``params`` are by section; ``loose_params`` were given
    without one (``--param key=value``, ``params: {key: value}``) and go to the section whose
    schema declares them when the job is submitted (``bytenite_nb.api.checks``).
    """

    template_id: str
    name: str | None = None
    description: str | None = None
    data_source: dict[str, Any] | None = None
    upload: Path | bytes | None = None
    data_destination: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    loose_params: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``POST /jobs`` body this spec makes (for ``--dry-run``). Params given without
        a section are shown as given: which section takes them is known once the template's
        schemas are read, at submit time."""
        body: dict[str, Any] = {"templateId": self.template_id}
        params = {**(self.params or {}), **(self.loose_params or {})} or None
        for key, value in (
            ("name", self.name), ("description", self.description),
            ("dataSource", self.data_source), ("dataDestination", self.data_destination),
            ("params", params), ("config", self.config),
        ):
            if value is not None:
                body[key] = value
        if isinstance(self.upload, Path):
            body["upload"] = str(self.upload)
        elif self.upload is not None:
            body["upload"] = f"<{len(self.upload)} bytes>"
        return body


def to_json_compatible(value: Any, where: str) -> Any:
    """Convert ``value`` into plain JSON types (dict/list/str/number/bool/None) or raise.

    numpy scalars and arrays, pandas Series, tuples, Paths and datetimes are converted; NaN
    and infinities are refused (JSON cannot carry them).
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _error(f"{where}: {value!r} cannot be sent as JSON")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _error(f"{where}: keys must be strings, got {type(key).__name__} {key!r}")
            out[key] = to_json_compatible(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_compatible(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    module = type(value).__module__.split(".")[0]
    if module in ("numpy", "pandas"):
        # numpy scalars have .item(); arrays and Series have .tolist()
        if hasattr(value, "tolist"):
            return to_json_compatible(value.tolist(), where)
        if hasattr(value, "item"):
            return to_json_compatible(value.item(), where)
    raise _error(
        f"{where}: a {type(value).__module__}.{type(value).__qualname__} cannot be sent as "
        "JSON; pass a dict, list, str, number or bool"
    )


def coerce_scalar(text: str) -> Any:
    """A ``--param``/``--config`` value: JSON if it parses (``3``, ``true``, ``[1]``), else text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _source(value: Any, where: str) -> tuple[dict[str, Any] | None, Path | bytes | None]:
    """Normalise a data source: descriptor dict, URL, local path, bytes, or ``bypass``."""
    if value is None:
        return None, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return wire.file_source(), bytes(value)
    if isinstance(value, os.PathLike):
        path = Path(value).expanduser()
        if not path.is_file():
            raise _error(f"{where}: {str(path)!r} is not an existing file")
        return wire.file_source(), path.resolve()
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "bypass":
            return wire.bypass(), None
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
            if not text.lower().startswith(("http://", "https://")):
                raise _error(
                    f"{where}: {text!r}: only http(s) URLs can be fetched; for buckets give a "
                    "full dataSource descriptor"
                )
            return wire.url_source(text), None
        path = Path(text).expanduser()
        if path.is_file():
            return wire.file_source(), path.resolve()
        raise _error(
            f"{where}: {text!r} is neither an http(s) URL nor an existing file "
            f"(looked in {Path.cwd()})"
        )
    if isinstance(value, Mapping):
        source = to_json_compatible(value, where)
        source = {wire.to_camel(k): v for k, v in source.items()}
        descriptor = source.get("dataSourceDescriptor")
        if not isinstance(descriptor, str) or not descriptor:
            raise _error(
                f"{where}: a data source needs dataSourceDescriptor "
                f"({', '.join(d.value for d in wire.Descriptor)})"
            )
        return source, None
    raise _error(
        f"{where}: cannot use a {type(value).__name__} as a data source; give a URL, a path, "
        "bytes, 'bypass', or a descriptor dict (for a DataFrame: df.to_csv().encode())"
    )


def _destination(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("bucket", "bypass"):
            return {"dataSourceDescriptor": text}
        raise _error(f"{where}: use 'bucket', 'bypass' or a descriptor dict, not {value!r}")
    if isinstance(value, Mapping):
        dest = {wire.to_camel(k): v for k, v in to_json_compatible(value, where).items()}
        if not isinstance(dest.get("dataSourceDescriptor"), str):
            raise _error(f"{where}: a data destination needs dataSourceDescriptor")
        return dest
    raise _error(f"{where}: use 'bucket', 'bypass' or a descriptor dict")


def _params(value: Any, where: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(params by section, params without a section) of a spec's ``params``."""
    if value is None:
        return None, None
    params = to_json_compatible(value, where)
    if not isinstance(params, dict):
        raise _error(f"{where}: must be a mapping, e.g. {{app: {{case: upper}}}}")
    sections = {k: v for k, v in params.items() if k in wire.PARAM_SECTIONS}
    # `params: {case: upper}`: the section whose schema declares `case` takes it at submit.
    loose = {k: v for k, v in params.items() if k not in wire.PARAM_SECTIONS}
    for section, values in sections.items():
        if section != "preset" and not isinstance(values, dict):
            raise _error(f"{where}.{section}: must be a mapping")
    return sections or None, loose or None


def _config(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    config = to_json_compatible(value, where)
    if not isinstance(config, dict):
        raise _error(f"{where}: must be a mapping, e.g. {{taskTimeout: 60}}")
    return {wire.to_camel(k): v for k, v in config.items()}


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _error(f"{where}: must be text, got {type(value).__name__}")
    return str(value)


def build_spec(data: Any, overrides: Mapping[str, Any] | None = None) -> JobSpec:
    """Validate a parsed, placeholder-filled spec mapping and normalise it into a JobSpec.

    ``overrides`` (camelCase keys, ``None`` values ignored) beat the mapping: they come from
    flags on the magic line.
    """
    if not isinstance(data, Mapping):
        raise _error(
            f"the body must be a mapping of fields ({', '.join(_FIELDS)}), "
            f"got {type(data).__name__}"
        )
    fields: dict[str, Any] = {}
    for raw_key, value in data.items():
        if not isinstance(raw_key, str):
            raise _error(f"field names must be text, got {raw_key!r}")
        key = wire.to_camel(raw_key)
        key = _ALIASES.get(key, key)
        if key not in _FIELDS:
            raise _error(
                f"unknown field {raw_key!r}.{suggest(key, [*_FIELDS, *_ALIASES])} "
                f"Fields: {', '.join(_FIELDS)} (and source: as shorthand for dataSource)"
            )
        if key in fields:
            raise _error(f"{raw_key!r} given twice (as an alias and by its own name)")
        fields[key] = value
    for key, value in (overrides or {}).items():
        if value is not None:
            fields[key] = value
    template = fields.get("templateId")
    if template is None or (isinstance(template, str) and not template.strip()):
        raise _error("templateId is required (list them with `%bytenite templates`)")
    if not isinstance(template, str):
        template = getattr(template, "id", template)  # a Template object from a placeholder
    if not isinstance(template, str):
        raise _error(f"templateId must be text, got {type(template).__name__}")
    data_source, upload = _source(fields.get("dataSource"), "dataSource")
    params, loose = _params(fields.get("params"), "params")
    return JobSpec(
        template_id=template.strip(),
        name=_text(fields.get("name"), "name"),
        description=_text(fields.get("description"), "description"),
        data_source=data_source,
        upload=upload,
        data_destination=_destination(fields.get("dataDestination"), "dataDestination"),
        params=params,
        config=_config(fields.get("config"), "config"),
        loose_params=loose,
    )


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    """Set ``SECTION.key`` (or, without a section, the loose ``key``) in ``target``."""
    parts = key.split(".")
    if parts[0] not in wire.PARAM_SECTIONS:
        parts = ["", *parts]  # no section: "" holds the loose ones until submit routes them
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise _error(f"--param {key}: {part} is already a value, not a section")
        node = child
    node[parts[-1]] = value


def spec_from_run_options(
    options: Mapping[str, Any], namespace: Mapping[str, Any]
) -> JobSpec:
    """Build the JobSpec of ``%bytenite run TEMPLATE --source ... --param k=v ...``."""

    def fill(text: str | None, where: str) -> Any:
        return None if text is None else resolve_text(text, namespace, where)

    params: dict[str, Any] | None = None
    if options.get("params") is not None:
        value = fill(options["params"], "--params")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _error(
                    "--params: expected JSON (quote it: --params '{\"app\": {...}}') "
                    "or $VAR holding a dict"
                ) from None
        sections, loose = _params(value, "--params")
        params = {**(sections or {}), **({"": loose} if loose else {})}
    for key, raw in options.get("param") or []:
        params = params if params is not None else {}
        value = fill(raw, f"--param {key}")
        _set_dotted(params, key, coerce_scalar(value) if isinstance(value, str) else value)
    if params is not None:
        loose_given = params.pop("", None)
        if loose_given:
            params.update(loose_given)  # build_spec splits them again
    config: dict[str, Any] | None = None
    for key, raw in options.get("config") or []:
        config = config if config is not None else {}
        value = fill(raw, f"--config {key}")
        config[key] = coerce_scalar(value) if isinstance(value, str) else value
    data = {
        "templateId": fill(options.get("template"), "TEMPLATE"),
        "name": fill(options.get("name"), "--name"),
        "description": fill(options.get("description"), "--description"),
        "dataSource": fill(options.get("source"), "--source"),
        "dataDestination": fill(options.get("destination"), "--destination"),
        "params": params,
        "config": config,
    }
    return build_spec({k: v for k, v in data.items() if v is not None})


def spec_from_cell(
    body: str, namespace: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> JobSpec:
    """Parse a ``%%bytenite`` body, fill its placeholders, and build the JobSpec."""
    data = fill_placeholders(parse_spec_text(body), namespace)
    return build_spec(data, overrides)
