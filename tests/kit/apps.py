"""App and engine folders written on the fly, and the test apps the suite shares.

A folder is what ``bytenite app new`` / ``bytenite engine new`` create: ``manifest.json``,
``app/main.py``, optionally ``schema.json`` (the params schema) and, for apps, ``template.json``.
ByteNite Local serves such folders with ``--apps`` (``apps_dirs=``), the Developer API takes
them as pushed archives, and pipeline tests load them with ``Registry.add_folder``.

The shared apps below are ordinary folders that ByteNite Local runs like any other, so tests
see real partitioning, real tasks, real logs, real failures and real aborts. Each reads its
knobs from its params section (``PARTITIONER_PARAMS`` / ``APP_PARAMS``); a template written
with `write_app` can set their defaults.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# -- partitioners --------------------------------------------------------------------------------

#: Partitioner: ``params.chunks`` chunks (default 1); chunk ``i`` holds the text ``chunk i``.
FANOUT = '''\
import json, os
params = json.loads(os.environ.get("PARTITIONER_PARAMS") or "{}")
count = int(params.get("chunks", 1))
for i in range(count):
    with open(os.path.join(os.environ["CHUNKS_DIR"], f"data_{i}.bin"), "w") as f:
        f.write(f"chunk {i}")
print("wrote", count, "chunks")
'''

#: Partitioner in the shape of the generated skeleton (``# === BYTENITE PARTITIONER``): reads
#: every source file, then writes ``params.num_replicas`` chunks ``replica i``, each named by
#: scanning CHUNKS_DIR for the next free index as the skeleton's ``write_chunk`` does.
REPLICAS = '''\
# === BYTENITE PARTITIONER - MAIN SCRIPT ===
import json
import os
import re

source_dir = os.getenv("SOURCE_DIR")
chunks_dir = os.getenv("CHUNKS_DIR")
chunk_file_path = os.path.join(chunks_dir, "data_{chunk_index}.bin")
partitioner_params = json.loads(os.getenv("PARTITIONER_PARAMS"))


def read_source_files():
    """Reads every file in the source directory."""
    source_files = []
    for filename in os.listdir(source_dir):
        path = os.path.join(source_dir, filename)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                source_files.append(f.read())
    return source_files


def write_chunk(data):
    """Writes a chunk as data_<next index>.bin, found by scanning the chunks directory."""
    indices = []
    for filename in os.listdir(chunks_dir):
        match = re.match(r"data_(\\d+)\\.bin$", filename)
        if match:
            indices.append(int(match.group(1)))
    next_index = max(indices, default=-1) + 1
    with open(chunk_file_path.format(chunk_index=next_index), "wb") as outfile:
        outfile.write(data)


if __name__ == "__main__":
    # 1. Reading Data Source
    read_source_files()
    # 3. Fanning Out Data
    for i in range(partitioner_params["num_replicas"]):
        write_chunk(f"replica {i}".encode())
'''

# -- apps ------------------------------------------------------------------------------------------

#: App: copies its chunk to its results as ``echo.bin`` and says so.
ECHO = '''\
import os, shutil
shutil.copy(os.path.join(os.environ["TASK_DIR"], "data.bin"),
            os.path.join(os.environ["TASK_RESULTS_DIR"], "echo.bin"))
print("echoed chunk", os.environ["CHUNK_NUMBER"])
'''

#: App: reverses its chunk's text into ``out.txt``.
REVERSE = '''\
import os, pathlib
text = pathlib.Path(os.environ["TASK_DIR"], "data.bin").read_text()
pathlib.Path(os.environ["TASK_RESULTS_DIR"], "out.txt").write_text(text[::-1])
'''

#: App: sleeps ``params.seconds`` (default 0.3); chunk ``params.flaky_chunk`` fails its first
#: attempt (exit code 7; attempts are marked in the folder ``params.flaky_dir``); chunk
#: ``params.slow_chunk`` sleeps ``params.slow_seconds`` more; chunk ``params.fail_chunk`` then
#: prints ``params.message`` on stderr and exits with code 3; the others write
#: ``out_<chunk>.txt``.
SLEEPY = '''\
import json, os, sys, time
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
chunk = int(os.environ.get("CHUNK_NUMBER", "0"))
seconds = float(params.get("seconds", 0.3))
print(f"chunk {chunk}: sleeping {seconds}s", flush=True)
time.sleep(seconds)
if params.get("flaky_chunk") == chunk:
    mark = os.path.join(params["flaky_dir"], f"chunk-{chunk}")
    if not os.path.exists(mark):
        open(mark, "w").close()
        print(f"chunk {chunk}: flaky, failing this attempt", file=sys.stderr)
        sys.exit(7)
if params.get("slow_chunk") == chunk:
    time.sleep(float(params.get("slow_seconds", 1.0)))
if params.get("fail_chunk") == chunk:
    print(f"chunk {chunk}: {params.get('message', 'failing on purpose')}", file=sys.stderr)
    sys.exit(3)
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], f"out_{chunk}.txt"), "w") as f:
    f.write(f"done {chunk}\\n")
print(f"chunk {chunk}: done", flush=True)
'''

SLEEPY_SCHEMA: dict[str, Any] = {
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
        "flaky_chunk": {"type": "integer", "minimum": 0,
                        "description": "this chunk fails its first attempt (exit code 7)"},
        "flaky_dir": {"type": "string", "description": "where flaky_chunk marks its attempts"},
        "slow_chunk": {"type": "integer", "minimum": 0,
                       "description": "this chunk sleeps slow_seconds longer"},
        "slow_seconds": {"type": "number", "minimum": 0},
    },
    "additionalProperties": False,
}

#: What `FAILING` prints on stderr before it exits with code 3.
FAILING_MESSAGE = "boom: the input is not what I expected"

#: App: prints ``about to fail``, then `FAILING_MESSAGE` on stderr, and exits with code 3.
FAILING = f'''\
import sys
print("about to fail", flush=True)
print({FAILING_MESSAGE!r}, file=sys.stderr)
sys.exit(3)
'''

#: App that fails its first ``params.fail`` attempts (of chunk ``params.chunk`` only, if given):
#: such an attempt writes ``partial.txt``, prints ``flaky failure number <n>`` on stderr and
#: exits with code 7; a later attempt writes ``ok.txt`` holding ``attempt <n>``. The attempts
#: are counted in the folder ``params.dir`` (a retry starts with a fresh task folder).
FLAKY = '''\
import json, os, sys
params = json.loads(os.environ["APP_PARAMS"])
chunk = int(os.environ["CHUNK_NUMBER"])
results = os.environ["TASK_RESULTS_DIR"]
counter = os.path.join(params["dir"], f"chunk-{chunk}")
n = int(open(counter).read()) if os.path.exists(counter) else 0
open(counter, "w").write(str(n + 1))
if n < params["fail"] and params.get("chunk", chunk) == chunk:
    open(os.path.join(results, "partial.txt"), "w").write("x")
    print(f"flaky failure number {n + 1}", file=sys.stderr)
    sys.exit(7)
open(os.path.join(results, "ok.txt"), "w").write(f"attempt {n + 1}")
'''

#: App that holds its task until the file ``params.gate`` exists: it touches ``params.started``
#: (if given), prints ``waiting for the gate`` and ``stderr while waiting`` (on stderr), waits
#: (exit code 3 after ``params.timeout`` seconds, default 120), then prints
#: ``through the gate`` and writes ``done.txt``. Whatever a test sees before it creates the
#: gate was delivered while the task was running.
GATED = '''\
import json, os, sys, time
params = json.loads(os.environ["APP_PARAMS"])
if params.get("started"):
    open(params["started"], "w").write(os.environ["CHUNK_NUMBER"])
print("waiting for the gate", flush=True)
print("stderr while waiting", file=sys.stderr, flush=True)
deadline = time.monotonic() + float(params.get("timeout", 120))
while not os.path.exists(params["gate"]):
    if time.monotonic() > deadline:
        sys.exit("the gate never opened")
    time.sleep(0.02)
print("through the gate", flush=True)
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "done.txt"), "w").write("ok")
'''

#: Works "forever" (120 s) in any stage (app, partitioner or assembler) after starting a child
#: process that does too, with ``params.marker`` in its command line (find it with
#: `tests.kit.processes.marked`): what an abort, a timeout or a killed server must stop,
#: children included. With ``params.pids`` (a folder), it puts there a file named by its own
#: pid that holds its child's pid. Prints ``working`` once the child runs.
SLOW_WITH_CHILD = '''\
import json, os, subprocess, sys, time
env = os.environ
params = json.loads(env.get("APP_PARAMS") or env.get("PARTITIONER_PARAMS")
                    or env.get("ASSEMBLER_PARAMS") or "{}")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", params["marker"]])
if params.get("pids"):  # written beside the folder, then renamed: never seen half-written
    aside = f"{params['pids']}.{os.getpid()}.tmp"
    with open(aside, "w") as fh:
        fh.write(str(child.pid))
    os.replace(aside, os.path.join(params["pids"], str(os.getpid())))
print("working", flush=True)
time.sleep(120)
'''

#: App: imports ``params.module`` (default ``inflection``) and writes ``report.json``: the
#: installed version of ``params.package`` (default the module's name), its interpreter,
#: ``sys.prefix``, ``VIRTUAL_ENV``, its parent's pid (the fork server it came from) and, for
#: ``inflection``, ``camelize("app_envs")``.
PACKAGE_REPORT = '''\
import importlib, importlib.metadata, json, os, sys
params = json.loads(os.environ.get("APP_PARAMS") or "{}")
module = importlib.import_module(params.get("module", "inflection"))
report = {
    "version": importlib.metadata.version(params.get("package", module.__name__)),
    "executable": sys.executable, "prefix": sys.prefix, "ppid": os.getppid(),
    "virtual_env": os.environ.get("VIRTUAL_ENV"),
}
if module.__name__ == "inflection":
    report["camel"] = module.camelize("app_envs")
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "report.json"), "w") as f:
    json.dump(report, f)
print("imported", module.__name__, report["version"])
'''

#: What `PACKAGE_REPORT` needs: a small pure-Python package that the server's own
#: environment does not have (the tests check it does not), and two versions of another.
SMALL_PACKAGE = "inflection==0.5.1"
SIDE_BY_SIDE = ("termcolor==2.3.0", "termcolor==2.4.0")
#: Like `SLOW_WITH_CHILD` (an app task), but its children leave the task's process group,
#: as daemons and servers an app starts do: one starts its own session, one is a daemon (a
#: double fork whose middle process exits at once, so its parent is gone). Both keep the
#: task's output pipes open and carry ``params.marker`` in their command lines; the task
#: prints ``working`` once both run (they touch ``<params.ready>.session``/``.daemon``).
DETACHED_CHILDREN = """\
import json, os, subprocess, sys, time
params = json.loads(os.environ["APP_PARAMS"])
marker, ready = params["marker"], params["ready"]
sleeper = "import os, sys, time; open(sys.argv[2], 'w').close(); time.sleep(120)"
subprocess.Popen([sys.executable, "-c", sleeper, marker, ready + ".session"],
                 start_new_session=True)
middle = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', sys.argv[1], "
          "sys.argv[2], sys.argv[3]], start_new_session=True)")
subprocess.Popen([sys.executable, "-c", middle, sleeper, marker, ready + ".daemon"]).wait()
while not (os.path.exists(ready + ".session") and os.path.exists(ready + ".daemon")):
    time.sleep(0.01)
print("working", flush=True)
time.sleep(120)
"""

#: Prints the secret in the variable ``params.key`` across the 64 KiB line cut: 65,530 x's and
#: the secret, then nothing for half a second (the server cuts what has arrived), then
#: `` and more`` and a newline. With ``params.runaway``, then a line that never ends (100,000
#: y's, the secret, 70,000 z's, EOF); with ``params.lines``, then the (multi-line) secret in
#: the variable it names, printed as it is.
SECRET_ACROSS_THE_CUT = """\
import json, os, sys, time
params = json.loads(os.environ["APP_PARAMS"])
key = os.environ[params["key"]]
sys.stdout.write("x" * 65530 + key)
sys.stdout.flush()
time.sleep(0.5)
sys.stdout.write(" and more\\n")
if params.get("runaway"):
    sys.stdout.write("y" * 100000 + key + "z" * 70000)
if params.get("lines"):
    print(os.environ[params["lines"]])
sys.stdout.flush()
"""

# -- assemblers -------------------------------------------------------------------------------

#: Assembler: zips every task result into ``results_archive.zip``, then prints
#: ``zipped <n> files``.
ZIPPER = '''\
# === BYTENITE ASSEMBLER - MAIN SCRIPT ===
import os, zipfile
results = os.getenv("TASK_RESULTS_DIR")
files = sorted(f for f in os.listdir(results) if os.path.isfile(os.path.join(results, f)))
with zipfile.ZipFile(os.path.join(os.getenv("OUTPUT_DIR"), "results_archive.zip"), "w") as z:
    for name in files:
        z.write(os.path.join(results, name), name)
print(f"zipped {len(files)} files")
'''

# -- writing folders ---------------------------------------------------------------------------


def write_folder(root: Path, folder: str, code: str, manifest: Mapping[str, Any], *,
                 schema: Mapping[str, Any] | None = None,
                 template: Mapping[str, Any] | None = None,
                 files: Mapping[str, str | bytes] | None = None) -> Path:
    """``root/folder`` with exactly this manifest, ``app/main.py`` (``code``, dedented), and
    ``schema.json``, ``template.json`` and further ``files`` (path in the folder -> content)
    if given. The low-level writer: `write_app` and `write_engine` fill in the manifest."""
    path = root / folder
    if path.exists():
        raise FileExistsError(f"{path} exists already: give each folder its own name")
    (path / "app").mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (path / "app" / "main.py").write_text(textwrap.dedent(code))
    if schema is not None:
        (path / "schema.json").write_text(json.dumps(schema))
    if template is not None:
        (path / "template.json").write_text(json.dumps(template))
    for name, content in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return path


def _manifest(name: str, kind: str, version: str,
              extra: Mapping[str, Any] | None) -> dict[str, Any]:
    manifest: dict[str, Any] = {"name": name, "version": version, "entrypoint": "main.py",
                                "platform": "docker"}
    if kind != "app":
        manifest["type"] = kind
    return {**manifest, **(extra or {})}


def write_app(root: Path, name: str, code: str, *,
              template: Mapping[str, Any] | bool = True,
              schema: Mapping[str, Any] | None = None, version: str = "0.1",
              manifest: Mapping[str, Any] | None = None,
              files: Mapping[str, str | bytes] | None = None,
              folder: str | None = None) -> Path:
    """An app folder ``root/<folder or name>``, returned.

    ``template``: True (default) writes ``<name>-template`` running the app between the
    passthrough engines; a mapping is merged over that (e.g. ``{"partitioner": "fanout",
    "params": {"partitioner": {"chunks": 3}}}``); False writes no template.json.
    ``manifest``: further manifest keys (e.g. ``platform_config``).
    """
    tpl = None
    if template is not False:
        tpl = {"id": f"{name}-template", "description": f"test app {name}", "app": name,
               "partitioner": "passthrough", "assembler": "passthrough",
               **(template if isinstance(template, Mapping) else {})}
    return write_folder(root, folder or name, code, _manifest(name, "app", version, manifest),
                        schema=schema, template=tpl, files=files)


def write_engine(root: Path, name: str, code: str, kind: str, *,
                 schema: Mapping[str, Any] | None = None, version: str = "0.1",
                 manifest: Mapping[str, Any] | None = None,
                 files: Mapping[str, str | bytes] | None = None,
                 folder: str | None = None) -> Path:
    """A partitioner or assembler folder (``kind``) ``root/<folder or name>``, returned."""
    if kind not in ("partitioner", "assembler"):
        raise ValueError(f"an engine is a partitioner or an assembler, not {kind!r}")
    return write_folder(root, folder or name, code, _manifest(name, kind, version, manifest),
                        schema=schema, files=files)


#: `standard_apps`' template running `SLEEPY` on 12 `FANOUT` chunks (0.3 s each).
SLEEPY_TEMPLATE_ID = "sleepy-template"
#: `standard_apps`' template running `ECHO` (no schema.json anywhere: forms edit its params
#: as JSON).
ECHO_TEMPLATE_ID = "echo-template"


def standard_apps(root: Path) -> Path:
    """The apps the notebook-side tests run, in ``root`` (returned): the ``fanout``
    partitioner, ``sleepy`` (with `SLEEPY_SCHEMA`) and `SLEEPY_TEMPLATE_ID`, ``echo`` and
    `ECHO_TEMPLATE_ID`, and ``failing`` with ``failing-template``."""
    write_engine(root, "fanout", FANOUT, "partitioner",
                 manifest={"description": "writes params.chunks chunks"})
    write_app(root, "sleepy", SLEEPY, schema=SLEEPY_SCHEMA,
              manifest={"description": "sleeps, optionally fails one chunk"},
              template={"id": SLEEPY_TEMPLATE_ID, "description": "fan out, sleep, pass through",
                        "partitioner": "fanout",
                        "params": {"partitioner": {"chunks": 12}, "app": {"seconds": 0.3},
                                   "assembler": {}}})
    write_app(root, "echo", ECHO, manifest={"description": "copies data.bin to its results"},
              template={"id": ECHO_TEMPLATE_ID,
                        "description": "copy the input, no params schema"})
    write_app(root, "failing", FAILING, manifest={"description": "always fails"})
    return root


#: App: reads SHARED_CACHE_DIR/<params.path> into its results, then tries to write next to
#: it, to replace it and to delete it, recording what each attempt said.
READ_SHARED = """
import json, os
params = json.loads(os.environ["APP_PARAMS"])
shared = os.environ["SHARED_CACHE_DIR"]
target = os.path.join(shared, params["path"])
report = {"content": open(target).read(), "attempts": {}}
for name, attempt in (("create", lambda: open(os.path.join(shared, "new.txt"), "w")),
                      ("replace", lambda: open(target, "w")),
                      ("delete", lambda: os.remove(target))):
    try:
        attempt()
        report["attempts"][name] = "allowed"
    except OSError as exc:
        report["attempts"][name] = exc.strerror
user = os.path.join(os.environ["USER_CACHE_DIR"], "from-job.txt")
open(user, "w").write("user cache stays writable")
with open(os.path.join(os.environ["TASK_RESULTS_DIR"], "report.json"), "w") as f:
    json.dump(report, f)
"""
