"""Helpers for the pipeline tests: app folders written on the fly, and a recording observer."""

from __future__ import annotations

import json
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bytenite_nb.server.execution.pipeline import PipelineSpec
from bytenite_nb.server.execution.registry import Engine, Registry
from bytenite_nb.wire import JobState, LogLevel, LogService, TaskState


def make_folder(root: Path, name: str, code: str, *, kind: str = "app",
                version: str = "0.1", schema: dict[str, Any] | None = None,
                manifest_extra: dict[str, Any] | None = None) -> Path:
    """Write an app/engine folder in the Dev CLI layout and return it."""
    folder = root / f"{name}-{version}"
    (folder / "app").mkdir(parents=True)
    manifest: dict[str, Any] = {"name": name, "version": version, "entrypoint": "main.py",
                                "platform": "docker"}
    if kind != "app":
        manifest["type"] = kind
    manifest.update(manifest_extra or {})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "app" / "main.py").write_text(textwrap.dedent(code))
    if schema is not None:
        (folder / "schema.json").write_text(json.dumps(schema))
    return folder


def engine(root: Path, name: str, code: str, *, kind: str = "app", **kw: Any) -> Engine:
    """A loaded engine from freshly written code."""
    folder = make_folder(root, name, code, kind=kind, **kw)
    return Registry(bundled=False).add_folder(folder)


def passthrough(kind: str) -> Engine:
    return Registry(bundled=False).resolve("passthrough", kind)


def spec(tmp_path: Path, app: Engine, *, partitioner: Engine | None = None,
         assembler: Engine | None = None, data_source: dict[str, Any] | None = None,
         params: dict[str, Any] | None = None, **kw: Any) -> PipelineSpec:
    return PipelineSpec(
        job_id="job-" + tmp_path.name,
        workdir=tmp_path / "work",
        data_source=data_source if data_source is not None else {"dataSourceDescriptor": "bypass"},
        partitioner=partitioner or passthrough("partitioner"),
        app=app,
        assembler=assembler or passthrough("assembler"),
        params=params or {"partitioner": {}, "app": {}, "assembler": {}},
        task_timeout=kw.pop("task_timeout", None),
        job_timeout=kw.pop("job_timeout", None),
        **kw,
    )


@dataclass
class Recorder:
    """A PipelineObserver that keeps everything it is told."""

    stages: list[JobState] = field(default_factory=list)
    chunk_count: int | None = None
    tasks: list[tuple[int, TaskState, int, int | None, str | None]] = field(default_factory=list)
    logs: list[tuple[LogService, int | None, LogLevel, str, str]] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)

    def stage(self, state: JobState) -> None:
        self.stages.append(state)

    def chunks(self, count: int) -> None:
        self.chunk_count = count

    def task(self, chunk: int, state: TaskState, attempt: int, *,
             exit_code: int | None = None, error: str | None = None) -> None:
        self.tasks.append((chunk, state, attempt, exit_code, error))
        if state is TaskState.RUNNING:
            self.running.set()

    def log(self, service: LogService, chunk: int | None, level: LogLevel, message: str,
            container: str) -> None:
        self.logs.append((service, chunk, level, message, container))

    def states(self, chunk: int) -> list[tuple[TaskState, int]]:
        return [(s, a) for c, s, a, _, _ in self.tasks if c == chunk]

    def messages(self, level: LogLevel | None = None) -> list[str]:
        return [m for _, _, lv, m, _ in self.logs if level is None or lv is level]
