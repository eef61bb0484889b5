"""Running the pipeline directly (no server): engines loaded from folders written on the fly,
a `PipelineSpec` with test defaults, and an observer that records everything it is told."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bytenite_nb.server.execution.pipeline import PipelineSpec
from bytenite_nb.server.execution.registry import Engine, Registry
from bytenite_nb.wire import JobState, LogLevel, LogService, TaskState
from tests.kit.apps import write_app, write_engine


def load_engine(root: Path, name: str, code: str, *, kind: str = "app",
                manifest: Mapping[str, Any] | None = None, **kw: Any) -> Engine:
    """An engine (``kind`` app, partitioner or assembler) loaded from a folder written from
    ``code`` under ``root``; ``kw`` as `write_app` / `write_engine` take them."""
    if kind == "app":
        folder = write_app(root, name, code, template=False, manifest=manifest, **kw)
    else:
        folder = write_engine(root, name, code, kind, manifest=manifest, **kw)
    return Registry(bundled=False).add_folder(folder)


def passthrough(kind: str) -> Engine:
    """The built-in passthrough partitioner or assembler."""
    return Registry(bundled=False).resolve("passthrough", kind)


def spec(tmp_path: Path, app: Engine, *, partitioner: Engine | None = None,
         assembler: Engine | None = None, data_source: dict[str, Any] | None = None,
         params: dict[str, Any] | None = None, **kw: Any) -> PipelineSpec:
    """A `PipelineSpec` working in ``tmp_path/work``: a bypass source, passthrough engines and
    empty params unless given, no timeouts unless ``task_timeout``/``job_timeout`` are."""
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
    """A PipelineObserver that keeps everything it is told, in order."""

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
        """Chunk ``chunk``'s task states with their attempt numbers, in order."""
        return [(s, a) for c, s, a, _, _ in self.tasks if c == chunk]

    def messages(self, level: LogLevel | None = None) -> list[str]:
        """Every logged line (at ``level`` only, if given), in order."""
        return [m for _, _, lv, m, _ in self.logs if level is None or lv is level]
