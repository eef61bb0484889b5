"""``app new`` / ``engine new`` / ``template new``: folders and files in the Dev CLI layout.

An app folder gets ``manifest.json``, ``app/main.py``, ``schema.json`` and ``template.json``
(a template pairing it with the ``passthrough`` partitioner and assembler); a partitioner or
assembler folder the same without ``template.json``. Each ``main.py`` is a working program
for its kind that uses only the standard library and reads exactly the variables ByteNite
sets, so a scaffold pushed unchanged runs a job:

* app: upper-cases its chunk when ``params.app.uppercase`` is true, else copies it, into
  ``result_<chunk>.bin``;
* partitioner: cuts every source file into chunks of about ``chunk_size`` bytes, extended to
  the end of a line (no line is cut);
* assembler: joins every task result, in file-name order, into ``output_name``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bytenite_nb.cli.common import USAGE, CliError

__all__ = ["KINDS", "new_engine_folder", "new_template", "template_body"]

KINDS = ("app", "partitioner", "assembler")
#: What ByteNite Local accepts as a name (letters, digits, '-', '_'; at most 64).
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"

_APP_MAIN = '''\
# === BYTENITE APP - MAIN SCRIPT ===
"""{name}: one task of a ByteNite job.

ByteNite runs this file once per chunk, in a fresh process, from the app/ folder, with:
  TASK_DIR          holds data.bin: this task's chunk, as the partitioner wrote it
  TASK_RESULTS_DIR  every file written here is a result of this task (the assembler's input)
  CHUNK_NUMBER      the chunk's index: 0, 1, 2, ...
  APP_PARAMS        the job's params.app as JSON, checked against ../schema.json first
  USER_CACHE_DIR    files kept between your jobs; SHARED_CACHE_DIR: read-only shared files
  SECRETS           your secrets as JSON (manifest.json's platform_config.secrets lists
                    the ones also set as variables of their own)
What it prints is the task's log; an exception (a non-zero exit) fails the task.
"""

import json
import os

task_dir = os.environ["TASK_DIR"]
results_dir = os.environ["TASK_RESULTS_DIR"]
chunk_number = int(os.environ.get("CHUNK_NUMBER") or 0)
params = json.loads(os.environ.get("APP_PARAMS") or "{{}}")


def process(data: bytes, params: dict) -> bytes:
    """Your code: one chunk in, its result out. This one upper-cases ASCII letters when
    the "uppercase" param is true and returns the chunk unchanged otherwise."""
    return data.upper() if params.get("uppercase", False) else data


if __name__ == "__main__":
    # 1. Reading Inputs
    with open(os.path.join(task_dir, "data.bin"), "rb") as f:
        data = f.read()
    # 2. Handling Parameters and 3. the Core Functionality
    result = process(data, params)
    # 4. Saving Outputs: one file per chunk, named by its number so results never collide
    name = f"result_{{chunk_number:04d}}.bin"
    with open(os.path.join(results_dir, name), "wb") as f:
        f.write(result)
    print(f"chunk {{chunk_number}}: {{len(data)}} bytes in, {{len(result)}} bytes out ({{name}})")
'''

_PARTITIONER_MAIN = '''\
# === BYTENITE PARTITIONER - MAIN SCRIPT ===
"""{name}: split a job's data source into chunks, one task per chunk.

ByteNite runs this file once per job, before the tasks, from the app/ folder, with:
  SOURCE_DIR          the files of the job's data source
  CHUNKS_DIR          every file written here becomes one task's data.bin; name them
                      data_0.bin, data_1.bin, ... (the number is the task's CHUNK_NUMBER)
  PARTITIONER_PARAMS  the job's params.partitioner as JSON, checked against ../schema.json
  USER_CACHE_DIR, SHARED_CACHE_DIR, SECRETS  as for apps
What it prints is in the job's logs; an exception (a non-zero exit) fails the job.
"""

import json
import os

source_dir = os.environ["SOURCE_DIR"]
chunks_dir = os.environ["CHUNKS_DIR"]
params = json.loads(os.environ.get("PARTITIONER_PARAMS") or "{{}}")
chunk_size = int(params.get("chunk_size", 1048576))


def split(data: bytes, size: int):
    """Your code: cut one source file into chunks. This one makes chunks of about `size`
    bytes, each extended to the end of its line so that no line is cut in two."""
    start = 0
    while start < len(data):
        end = min(len(data), start + size)
        newline = data.find(b"\\n", end - 1)
        end = len(data) if newline < 0 else newline + 1
        yield data[start:end]
        start = end


if __name__ == "__main__":
    count = 0
    # 1. Reading the Data Source: every file, in name order
    for name in sorted(os.listdir(source_dir)):
        path = os.path.join(source_dir, name)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        # 2. Pre-Processing and 3. Fanning Out Data
        for chunk in split(data, chunk_size):
            with open(os.path.join(chunks_dir, f"data_{{count}}.bin"), "wb") as f:
                f.write(chunk)
            count += 1
    print(f"wrote {{count}} chunks of about {{chunk_size}} bytes")
'''

_ASSEMBLER_MAIN = '''\
# === BYTENITE ASSEMBLER - MAIN SCRIPT ===
"""{name}: combine the results of a job's tasks into the job's results.

ByteNite runs this file once per job, after every task, from the app/ folder, with:
  TASK_RESULTS_DIR  every task's result files, side by side
  OUTPUT_DIR        every file written here is a result of the job
  ASSEMBLER_PARAMS  the job's params.assembler as JSON, checked against ../schema.json
  USER_CACHE_DIR, SHARED_CACHE_DIR, SECRETS  as for apps
What it prints is in the job's logs; an exception (a non-zero exit) fails the job.
"""

import json
import os

results_dir = os.environ["TASK_RESULTS_DIR"]
output_dir = os.environ["OUTPUT_DIR"]
params = json.loads(os.environ.get("ASSEMBLER_PARAMS") or "{{}}")
output_name = params.get("output_name", "output.bin")


def merge(parts: list) -> bytes:
    """Your code: the tasks' results in, the job's result out. This one joins them."""
    return b"".join(parts)


if __name__ == "__main__":
    # 1. Reading Result Files, in file-name order (result_0000.bin, result_0001.bin, ...)
    names = sorted(n for n in os.listdir(results_dir)
                   if os.path.isfile(os.path.join(results_dir, n)))
    parts = []
    for name in names:
        with open(os.path.join(results_dir, name), "rb") as f:
            parts.append(f.read())
    # 2. Fanning In and 3. Post-Processing
    output = merge(parts)
    # 4. Saving the Final Output
    with open(os.path.join(output_dir, output_name), "wb") as f:
        f.write(output)
    print(f"joined {{len(parts)}} task results into {{output_name}} ({{len(output)}} bytes)")
'''

_MAINS = {"app": _APP_MAIN, "partitioner": _PARTITIONER_MAIN, "assembler": _ASSEMBLER_MAIN}

_SCHEMAS: dict[str, dict[str, Any]] = {
    "app": {"uppercase": {"type": "boolean", "default": False,
                          "description": "upper-case ASCII letters instead of copying"}},
    "partitioner": {"chunk_size": {"type": "integer", "minimum": 1, "default": 1048576,
                                   "description": "bytes per chunk (each chunk runs on to "
                                                  "the end of its line)"}},
    "assembler": {"output_name": {"type": "string", "pattern": "^[^/\\\\]+$",
                                  "default": "output.bin",
                                  "description": "the file name of the job's result"}},
}


def check_name(name: str, what: str) -> str:
    """``name`` if ByteNite Local accepts it as an app or engine name; else a usage error."""
    if not _NAME_RE.fullmatch(name):
        raise CliError(f"{name!r} is not a valid {what} name: use letters, digits, '-' and "
                       "'_' (at most 64), e.g. my-app", USAGE)
    return name


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _target(parent: Path, name: str) -> Path:
    folder = parent / name
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CliError(f"{folder} already exists: choose another name, another --dir, or "
                       "remove it first", USAGE)
    return folder


def template_body(template_id: str, app: str, partitioner: str = "passthrough",
                  assembler: str = "passthrough") -> dict[str, Any]:
    """A ``template.json``: which app and engines to run, with empty default params."""
    return {
        "id": template_id,
        "description": f"Runs {app} ({partitioner} partitioner, {assembler} assembler)",
        "app": app,
        "partitioner": partitioner,
        "assembler": assembler,
        "params": {"partitioner": {}, "app": {}, "assembler": {}},
        "config": {},
    }


def new_engine_folder(kind: str, name: str, parent: Path) -> tuple[Path, list[str]]:
    """Create ``parent/name`` for an app, partitioner or assembler; returns the folder and
    the files written (relative, for the report)."""
    if kind not in KINDS:
        raise CliError(f"type must be one of {', '.join(KINDS)}, got {kind!r}", USAGE)
    check_name(name, kind)
    folder = _target(parent, name)
    (folder / "app").mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "name": name,
        "version": "0.1",
        "description": f"{'An' if kind[0] in 'aeiou' else 'A'} {kind} named {name}",
        "entrypoint": "main.py",
        "platform": "docker",
        "platform_config": {"container": "python:3.11-slim"},
        "device_requirements": {"min_cpu": 1, "min_memory": 1},
    }
    if kind != "app":
        manifest["type"] = kind
    _write_json(folder / "manifest.json", manifest)
    (folder / "app" / "main.py").write_text(_MAINS[kind].format(name=name), encoding="utf-8")
    _write_json(folder / "schema.json", {
        "$schema": _SCHEMA_URL,
        "title": f"{name} params",
        "type": "object",
        "properties": _SCHEMAS[kind],
        "additionalProperties": False,
    })
    files = ["manifest.json", "app/main.py", "schema.json"]
    if kind == "app":
        template = template_body(f"{name}-template", name)
        template["description"] = f"Runs {name} on each file of the data source"
        template["params"]["app"] = {"uppercase": False}
        _write_json(folder / "template.json", template)
        files.append("template.json")
    return folder, files


def new_template(template_id: str, path: Path, *, app: str, partitioner: str,
                 assembler: str, force: bool = False) -> Path:
    """Write a template file at ``path`` (refusing to replace one unless ``force``)."""
    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,128}", template_id):
        raise CliError(f"{template_id!r} is not a valid template id: use letters, digits, "
                       "'-', '_', '.', '@' (at most 128)", USAGE)
    if path.exists() and not force:
        raise CliError(f"{path} already exists: pass --force to replace it, or -o another "
                       "file", USAGE)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_json(path, template_body(template_id, app, partitioner, assembler))
    return path
