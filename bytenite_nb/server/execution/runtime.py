"""How each engine of a job runs here: its interpreter (an app environment's Python, the
server's, ``node`` or ``bash``), the slots and GPUs each of its processes takes, and what its
output says when it fails.

`plan_runtimes` is called once per job before anything runs: it checks every engine's
``device_requirements`` against the machine and that its interpreter is installed, builds
(or reuses) the app environments, and says in the job's log what differs from ByteNite (an
engine that ByteNite ran in a container runs in a local environment here). A problem fails
the job there, before the data source is fetched, with a message naming it.

`Diagnosis` reads a process's output lines for the plain reasons a process fails (a module
that is not installed, a command not found, memory exhausted), so the job's ``errorMessage``
names what is missing rather than quoting whatever line came last.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bytenite_nb.server.execution.environments import (
    BuildCancelled,
    BuildError,
    Environments,
    RequirementsError,
    find_requirements,
)
from bytenite_nb.server.execution.registry import Engine
from bytenite_nb.server.execution.resources import Machine, format_bytes

__all__ = ["Diagnosis", "PlanError", "Runtime", "RuntimeSettings", "plan_runtimes"]

#: ``(engine, level, message)``: a line for the job's log; level is ``"INFO"``, ``"WARN"`` or
#: ``"ERROR"``.
Note = Callable[[Engine, str, str], None]

_INSTALL_HINTS = {"node": "install Node.js (the node program)", "bash": "install bash"}


class PlanError(Exception):
    """An engine cannot run here; the message names the engine, the need and the fix."""


class PlanCancelled(Exception):
    """The job was aborted or timed out while its environments were being prepared."""


@dataclass(frozen=True)
class RuntimeSettings:
    """The server's choices that shape how engines run (``serve`` flags)."""

    #: Where app environments are built; None: every Python entrypoint runs in the server's
    #: own Python (``--no-app-envs``).
    environments: Environments | None = None
    machine: Machine | None = None
    #: ``--ignore-requirements``: run engines this machine does not meet, with a warning.
    ignore_requirements: bool = False
    #: ``--task-memory-limit`` in bytes.
    memory_limit: int | None = None


@dataclass(frozen=True)
class Runtime:
    """How one engine's processes run."""

    python: str | None = None  # an environment's interpreter; None: the server's
    command: tuple[str, ...] = ()  # the program of a non-Python entrypoint
    cpus: int = 1
    gpus: int = 0
    #: Variables its processes get on top of the contract's (``VIRTUAL_ENV``).
    env: dict[str, str] = field(default_factory=dict)
    #: A folder to put first on ``PATH`` (the environment's ``bin``).
    path_first: str | None = None
    environment: str | None = None  # the environment's name
    requirements: str | None = None  # the file it was built from, relative to the folder
    #: Its processes run on other machines (app tasks on Dask workers), in their own Python:
    #: no environment is built for them.
    elsewhere: bool = False
    #: What its requirements file lists, for an engine that runs elsewhere (its processes
    #: need them installed where they run).
    needs: tuple[str, ...] = ()


def pip_install_line(requirements: tuple[str, ...]) -> str:
    """``pip install 'numpy>=1.26' 'pandas'``: the requirement lines as one shell command
    (option lines such as ``--extra-index-url URL`` split into their words)."""
    words: list[str] = []
    for line in requirements:
        words += shlex.split(line) if line.startswith("-") else [line]
    return "pip install " + shlex.join(words)


def _where(engine: Engine) -> str:
    return f"the {engine.kind} {engine.tag}"


def _program(engine: Engine, path: str) -> tuple[tuple[str, ...], str | None]:
    """The program that runs a non-Python entrypoint, or why there is none."""
    program = engine.program
    if program is None:
        return (), None
    found = shutil.which(program, path=path)
    if found:
        return (found,), None
    return (), (f"{_where(engine)} needs {program} to run app/{engine.entrypoint}, and "
                f"{program} is not installed here (not found on PATH): "
                f"{_INSTALL_HINTS.get(program, 'install it')}")


def plan_runtimes(engines: list[Engine], settings: RuntimeSettings, *, workers: int, path: str,
                  note: Note, cancel: threading.Event | None = None,
                  deadline: float | None = None,
                  elsewhere: frozenset[str] = frozenset()) -> dict[str, Runtime]:
    """The `Runtime` of each engine (by kind; built-in engines have none). Raises
    `PlanError` naming every engine that cannot run here, `PlanCancelled` on cancel.
    ``elsewhere``: the kinds whose processes run on other machines (app tasks on Dask
    workers): neither checked against this machine nor given an environment here."""
    from bytenite_nb.server.execution.resources import this_machine

    machine = settings.machine or this_machine()
    problems: list[tuple[Engine, str]] = []
    plans: dict[str, Runtime] = {
        e.kind: _elsewhere(e, note) for e in engines if not e.builtin and e.kind in elsewhere}
    engines = [e for e in engines if not e.builtin and e.kind not in elsewhere]
    for engine in engines:
        needs = engine.device_requirements
        short = needs.shortfalls(machine, settings.memory_limit)
        if short:
            text = f"{_where(engine)} needs {' and '.join(short)}"
            if settings.ignore_requirements:
                note(engine, "WARN", f"{text}; it runs anyway (--ignore-requirements)")
            else:
                problems.append((engine, f"{text}; run it on a machine that has them, or "
                                         "start the server with --ignore-requirements"))
        others = needs.other_models(machine)
        if others:
            note(engine, "WARN", f"{_where(engine)} asks for a GPU among "
                                 f"{', '.join(needs.gpu)}; it runs on this machine's "
                                 f"{others}")
        command, missing = _program(engine, path)
        if missing:
            problems.append((engine, missing))
        cpus = min(needs.slots, workers)
        if needs.slots > workers and not short:
            note(engine, "WARN", f"{_where(engine)} asks for {needs.min_cpu:g} CPUs "
                                 f"(min_cpu); the server has {workers} worker slot"
                                 f"{'s' if workers != 1 else ''} (--workers), so its "
                                 "processes take all of them, one at a time")
        gpus = 1 if needs.gpu and machine.gpus else 0
        plans[engine.kind] = Runtime(command=command, cpus=cpus, gpus=gpus)
    if problems:
        for engine, text in problems:
            note(engine, "ERROR", text)
        raise PlanError("; ".join(text for _, text in problems))
    for engine in engines:
        plans[engine.kind] = _with_environment(engine, plans[engine.kind], settings, note,
                                               cancel, deadline)
    return plans


def _elsewhere(engine: Engine, note: Note) -> Runtime:
    """The runtime of an engine whose processes run on the Dask workers, in the workers' own
    Python: no environment is built there, so requirements it declares are said out loud
    (a WARN line in the job's log, once per job and engine) with the line that installs
    them."""
    requirements = None
    if engine.program is None and engine.folder is not None:
        try:
            requirements = find_requirements(engine.folder, engine.entrypoint)
        except RequirementsError as exc:
            raise PlanError(f"{_where(engine)}: {exc}") from None
    if requirements is None or not requirements.lines:
        return Runtime(elsewhere=True)
    label = requirements.label(engine.folder)
    count = len(requirements.lines)
    note(engine, "WARN",
         f"{_where(engine)} lists {count} requirement{'s' if count != 1 else ''} in "
         f"{label} ({', '.join(requirements.lines)}), and its tasks run on the Dask "
         "workers: app environments are not built there, so the workers' own Python must "
         f"provide them. Install them on every worker: {pip_install_line(requirements.lines)}")
    return Runtime(elsewhere=True, requirements=label, needs=requirements.lines)


def _with_environment(engine: Engine, plan: Runtime, settings: RuntimeSettings, note: Note,
                      cancel: threading.Event | None, deadline: float | None) -> Runtime:
    """``plan`` with the engine's app environment (built now if needed), saying where the
    engine runs when ByteNite would have used a container."""
    assert engine.folder is not None
    requirements = None
    if engine.program is None:
        try:
            requirements = find_requirements(engine.folder, engine.entrypoint)
        except RequirementsError as exc:
            raise PlanError(f"{_where(engine)}: {exc}") from None
    where = {"node": "node", "bash": "bash"}.get(engine.program or "", "the server's Python")
    if requirements is not None and not requirements.lines:
        requirements = None
    envs = settings.environments
    if requirements is not None and envs is None:
        note(engine, "WARN", f"{_where(engine)} has {requirements.label(engine.folder)}, "
                             "which is ignored (--no-app-envs): it runs in the server's Python")
        requirements = None
    if requirements is None:
        if engine.container:
            note(engine, "INFO", f"{_where(engine)} runs locally with {where}, not in the "
                                 f"container {engine.container}")
        return plan
    assert envs is not None
    label = requirements.label(engine.folder)
    name = envs.name_for(requirements)
    if not envs.ready(name):
        note(engine, "INFO", f"preparing environment for {engine.tag} from {label} "
                             f"({len(requirements.lines)} requirement"
                             f"{'s' if len(requirements.lines) != 1 else ''}): {name}")
    try:
        envs.prepare(requirements, on_line=lambda line: note(engine, "INFO", line),
                     cancel=cancel, deadline=deadline)
    except BuildCancelled as exc:
        raise PlanCancelled(str(exc)) from None
    except BuildError as exc:
        message = (f"preparing the environment of {_where(engine)} from {label} failed: "
                   f"{exc}")
        note(engine, "ERROR", message)
        raise PlanError(message) from None
    python = str(envs.python(name))
    container = f", not in the container {engine.container}" if engine.container else ""
    note(engine, "INFO", f"{_where(engine)} runs in environment {name} (from {label})"
                         f"{container}")
    return Runtime(python=python, command=plan.command, cpus=plan.cpus, gpus=plan.gpus,
                   env={"VIRTUAL_ENV": str(envs.path(name))},
                   path_first=str(Path(python).parent), environment=name, requirements=label)


# -- reading a failed process's output ------------------------------------------------------

_MISSING_MODULE = re.compile(r"^(?:\w+\.)*ModuleNotFoundError: No module named '([^']+)'")
_MISSING_NODE_MODULE = re.compile(r"^(?:\w+ )?Error: Cannot find (?:module|package) '([^']+)'")
_COMMAND_NOT_FOUND = re.compile(r"^(?:.*?: )?(?:line \d+: )?([^\s:]+): (?:command )?not found$")
_MEMORY = re.compile(r"^(?:\w+\.)*MemoryError\b|std::bad_alloc|Cannot allocate memory|"
                     r"JavaScript heap out of memory")


class Diagnosis:
    """Reads a process's output lines for the reasons a process plainly says it failed;
    `describe` turns the last one found into the words of the job's ``errorMessage``."""

    def __init__(self, engine: Engine, runtime: Runtime | None, *, envs_enabled: bool,
                 memory_limit: int | None) -> None:
        self.engine = engine
        self.runtime = runtime or Runtime()
        self.envs_enabled = envs_enabled
        self.memory_limit = memory_limit
        self.found: tuple[str, str, str] | None = None  # (kind, name, line)

    def feed(self, line: str) -> None:
        text = line.strip()
        for kind, pattern in (("module", _MISSING_MODULE), ("node-module", _MISSING_NODE_MODULE),
                              ("command", _COMMAND_NOT_FOUND), ("memory", _MEMORY)):
            match = pattern.search(text) if kind == "memory" else pattern.match(text)
            if match:
                name = match.group(1) if match.groups() else ""
                self.found = (kind, name, text[:300])
                return

    def describe(self, exit_code: int | None) -> str | None:
        """What the process's failure was, in a phrase that follows "the task for chunk N"
        (None when nothing plain was found)."""
        if self.found is None:
            if self.memory_limit and exit_code is not None and exit_code in (-6, -7, -9, -11):
                return (f"was killed by signal {-exit_code}: it may have exceeded its memory "
                        f"limit of {format_bytes(self.memory_limit)} (--task-memory-limit)")
            return None
        kind, name, line = self.found
        status = f"failed with exit code {exit_code}"
        if kind == "memory":
            if self.memory_limit:
                return (f"exceeded its memory limit of {format_bytes(self.memory_limit)} "
                        f"(--task-memory-limit) and {status}: {line}")
            return f"ran out of memory and {status}: {line}"
        if kind == "command":
            return (f"{status}: the command {name!r} is not installed here ({line}): install "
                    "it on the machine that runs ByteNite Local")
        if kind == "node-module":
            return (f"{status}: node cannot find module {name!r}: ByteNite Local installs "
                    "Python requirements only; vendor the module in the app folder")
        return f"{status}: module {name!r} is not installed ({line}): {self._module_fix(name)}"

    def _module_fix(self, module: str) -> str:
        top = module.split(".")[0]
        folder = "app/" + os.path.dirname(self.engine.entrypoint)
        beside = folder.rstrip("/") + "/requirements.txt"
        if self.runtime.elsewhere:
            where = ("the task ran on a Dask worker, in the worker's own Python (app "
                     "environments are not built on Dask workers): install ")
            if self.runtime.needs:
                return (f"{where}what {self.runtime.requirements} lists on every worker "
                        f"({pip_install_line(self.runtime.needs)}), and make sure it "
                        f"provides {top!r}")
            return (f"{where}the package that provides {top!r} on every worker (pip "
                    f"install it there), and list it in {beside}")
        if self.runtime.environment:
            return (f"the environment built from {self.runtime.requirements} does not have "
                    f"it: add the package that provides {top!r} to "
                    f"{self.runtime.requirements}")
        if not self.envs_enabled:
            return (f"the app runs in the server's Python (--no-app-envs): install the "
                    f"package that provides {top!r} there, or drop --no-app-envs and list it "
                    f"in {beside}")
        return (f"list the package that provides {top!r} in {beside}: ByteNite Local "
                "then builds an environment for the app")
