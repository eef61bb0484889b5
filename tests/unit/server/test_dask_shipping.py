"""What the Dask executor sends to workers that have no bytenite-nb: the worker-side package
(as source, standard library only), the shims (by value), and the mapping of a manifest's
device requirements onto Dask resources. Without a cluster: each check runs in a fresh
interpreter that cannot import bytenite_nb."""

from __future__ import annotations

import inspect
import json
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.server.execution.executors import dask_remote
from bytenite_nb.server.execution.executors.dask import (
    _ByValue,
    _version_problems,
    device_resources,
    remote_sources,
)

# Run first in the fresh interpreters: importing bytenite_nb fails there, as on a worker.
_NO_BYTENITE = textwrap.dedent("""
    from __future__ import annotations
    import sys
    class _Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "bytenite_nb":
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None
    sys.meta_path.insert(0, _Refuse())
""")


def _fresh(code: str, stdin: str = "", cwd: Path | None = None) -> str:
    """Run ``code`` in ``python -I`` where bytenite_nb cannot be imported; its stdout."""
    done = subprocess.run([sys.executable, "-I", "-c", _NO_BYTENITE + textwrap.dedent(code)],
                          input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_worker_package_is_the_fork_server_and_needs_only_the_standard_library(
        tmp_path: Path) -> None:
    sources, digest = remote_sources()
    assert set(sources) == {"__init__.py", "dask_remote.py", "forkserver.py", "zygote.py",
                            "entry_imports.py", "base.py", "process.py"}
    assert remote_sources()[1] == digest  # stable
    # imported as the plugin does on a worker, by an interpreter without bytenite_nb
    out = _fresh(inspect.getsource(dask_remote.install) + """
import json, sys, os, shutil, tempfile
request = json.load(sys.stdin)
module = install(request["sources"], request["digest"], request["where"])
print(json.dumps({"name": module.__name__, "worker_side": hasattr(module, "WorkerSide"),
                  "zygote": os.path.isfile(sys.modules[module.__package__ + ".zygote"].__file__),
                  "ours": sorted(m for m in sys.modules if m.startswith("bytenite_nb"))}))
""", stdin=json.dumps({"sources": sources, "digest": digest, "where": str(tmp_path)}))
    got = json.loads(out)
    assert got == {"name": f"_bytenite_remote_{digest[:16]}.dask_remote", "worker_side": True,
                   "zygote": True, "ours": []}


def test_the_shims_unpickle_without_bytenite_nb() -> None:
    env = {"APP_PARAMS": "{}", "SECRETS": '[{"secretKey": "s3cr3t"}]'}
    blob = pickle.dumps([_ByValue(dask_remote.sealed(env)), _ByValue(dask_remote.hold)])
    done = subprocess.run([sys.executable, "-I", "-c", _NO_BYTENITE + textwrap.dedent("""
        import pickle, sys, json
        sealed, hold = pickle.loads(sys.stdin.buffer.read())
        print(json.dumps({"env": sealed(), "hold": hold(b"x").decode(), "repr": repr(sealed)}))
    """)], input=blob, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    out = json.loads(done.stdout)
    assert out["env"] == env and out["hold"] == "x"
    assert "s3cr3t" not in out["repr"]  # what a worker logging the task's arguments shows


@pytest.mark.parametrize(("manifest", "expected"), [
    ({}, {}),
    ({"device_requirements": {}}, {}),
    ({"device_requirements": {"min_cpu": 2, "min_memory": 4}},
     {"CPU": 2.0, "MEMORY": 4.0 * 1024**3}),
    ({"deviceRequirements": {"minCpu": "1.5", "minMemory": 0.5}},
     {"CPU": 1.5, "MEMORY": 0.5 * 1024**3}),
    ({"Device_Requirements": {"gpu": ["NVIDIA A100-SXM4-40GB", "NVIDIA GeForce RTX 4090"]}},
     {"GPU": 1.0}),
    ({"device_requirements": {"gpu": []}}, {}),
    ({"device_requirements": {"gpu": True, "min_cpu": 0}}, {"GPU": 1.0}),
    ({"device_requirements": {"gpu": 2}}, {"GPU": 2.0}),
    ({"device_requirements": {"min_cpu": "lots", "min_memory": -1, "gpu": None}}, {}),
    ({"device_requirements": "2 cpus"}, {}),
])
def test_device_requirements_become_dask_resources(manifest: dict[str, Any],
                                                   expected: dict[str, float]) -> None:
    assert device_resources(manifest) == expected


class _Client:
    def __init__(self, versions: dict[str, Any]) -> None:
        self.versions = versions

    def get_versions(self, check: bool = False) -> dict[str, Any]:
        return self.versions


def _packages(python: str = "3.11.7.final.0", distributed: str = "2026.8.0",
              **more: str) -> dict[str, Any]:
    return {"packages": {"python": python, "distributed": distributed, "cloudpickle": "3.1.3",
                         "msgpack": "1.2.4", "numpy": None, **more}}


def test_versions_that_matter_are_compared_and_others_ignored() -> None:
    client = _Client({
        "client": _packages(numpy="2.4.6"),
        "scheduler": _packages(python="3.11.2.final.0"),  # same minor: fine
        "workers": {"tcp://a": _packages(), "tcp://b": _packages(python="3.12.1.final.0"),
                    "tcp://c": _packages(distributed="2025.1.0")},
    })
    on_scheduler, on_workers = _version_problems(client)
    assert on_scheduler == []
    assert on_workers == ["tcp://b: python 3.12 (this server: 3.11)",
                          "tcp://c: distributed 2025.1.0 (this server: 2026.8.0)"]
    mismatched = _Client({"client": _packages(), "scheduler": _packages(python="3.10.0"),
                          "workers": {}})
    assert _version_problems(mismatched) == (["python 3.10 (this server: 3.11)"], [])
