"""Real ByteNite app folders for the widget tests: a fan-out partitioner, a slow app and a
schema-less echo app.

They are ordinary Dev-CLI-layout folders that ByteNite Local runs like any other app, so the
monitor sees real partitioning, many real tasks, real logs, a real failure, and real aborts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FANOUT_MAIN = '''\
import json, os
params = json.loads(os.environ.get("PARTITIONER_PARAMS") or "{}")
for i in range(int(params.get("chunks", 12))):
    with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "w") as f:
        f.write(f"chunk {i}\\n")
print("wrote", params.get("chunks", 12), "chunks")
'''

SLEEPY_MAIN = '''\
import json, os, sys, time
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
chunk = int(os.environ.get("CHUNK_NUMBER", "0"))
seconds = float(params.get("seconds", 0.3))
print(f"chunk {chunk}: sleeping {seconds}s", flush=True)
time.sleep(seconds)
if params.get("fail_chunk") == chunk:
    print(f"chunk {chunk}: {params.get('message', 'failing on purpose')}", file=sys.stderr)
    sys.exit(3)
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], f"out_{chunk}.txt"), "w") as f:
    f.write(f"done {chunk}\\n")
print(f"chunk {chunk}: done", flush=True)
'''

SLEEPY_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "sleepy app params",
    "type": "object",
    "properties": {
        "seconds": {"type": "number", "minimum": 0, "maximum": 600,
                    "description": "how long each task sleeps"},
        "fail_chunk": {"type": "integer", "minimum": 0,
                       "description": "this chunk exits with code 3"},
        "message": {"type": "string", "description": "what the failing chunk prints"},
        "mode": {"enum": ["fast", "slow"]},
    },
    "additionalProperties": False,
}

ECHO_MAIN = '''\
import os, shutil
shutil.copy(os.path.join(os.environ["TASK_DIR"], "data.bin"),
            os.path.join(os.environ["TASK_RESULTS_DIR"], "echo.bin"))
'''

TEMPLATE_ID = "sleepy-template"
#: A template whose app and engines have no schema.json: forms edit its params as JSON.
ECHO_TEMPLATE_ID = "echo-template"


def _folder(root: Path, name: str, main: str, description: str, *, kind: str | None = None,
            template: dict[str, Any] | None = None,
            schema: dict[str, Any] | None = None) -> None:
    """One app/engine folder in the Dev CLI layout."""
    folder = root / name
    (folder / "app").mkdir(parents=True)
    manifest = {"name": name, "version": "0.1", "entrypoint": "main.py",
                "description": description, **({"type": kind} if kind else {})}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "app" / "main.py").write_text(main)
    if schema is not None:
        (folder / "schema.json").write_text(json.dumps(schema))
    if template is not None:
        (folder / "template.json").write_text(json.dumps(template))


def write_test_apps(root: Path) -> Path:
    """Create the ``fanout`` partitioner, the ``sleepy`` app and ``sleepy-template``, and the
    schema-less ``echo`` app (copies its input to its results) with ``echo-template``."""
    _folder(root, "fanout", FANOUT_MAIN, "writes params.chunks chunks", kind="partitioner")
    _folder(root, "sleepy", SLEEPY_MAIN, "sleeps, optionally fails one chunk",
            schema=SLEEPY_SCHEMA, template={
                "id": TEMPLATE_ID, "description": "fan out, sleep, pass through",
                "app": "sleepy", "partitioner": "fanout", "assembler": "passthrough",
                "params": {"partitioner": {"chunks": 12}, "app": {"seconds": 0.3},
                           "assembler": {}}})
    _folder(root, "echo", ECHO_MAIN, "copies data.bin to its results", template={
        "id": ECHO_TEMPLATE_ID, "description": "copy the input, no params schema",
        "app": "echo", "partitioner": "passthrough", "assembler": "passthrough"})
    return root
