"""Running app tasks on an existing ``dask.distributed`` cluster (``--executor dask``).

Workers need ``distributed`` and the server's Python version, nothing of bytenite-nb: what
runs there travels with the work (see :mod:`.dask_remote`). Each worker gets, through a
worker plugin, a warm fork server (the local executor's own, one zygote per worker thread),
so a task forks from a warm interpreter instead of starting Python; the app folder travels
once per app version (a Dask future the scheduler can recompute) and is unpacked once per
worker. Partitioner and assembler stay on the server (``engine_executor``, a fork server).

**Batches.** The pipeline hands this executor one task per thread (:meth:`DaskExecutor.run`
blocks until that task ended), with many threads (``workers``, the tasks in flight, default
16 per cluster thread). A dispatcher thread groups queued tasks of the same job and app into
batches, each one Dask task that runs its tasks one after the other on a worker, and submits
them (``Client.map`` when several are ready), keeping two batches per worker thread in
flight. A batch's size follows the tasks' measured duration: about 0.1 s of work (so that
Dask's few milliseconds per task are paid once for many tiny tasks, and a 0.2 s task goes
alone), at most its share of the queue (so every worker gets some), and at most 8 MiB of
chunks. Finished batches are collected as they complete (a done-callback, then one gather for
all that are ready), and each task's thread writes its result files.

**Data.** Chunks up to 1 MiB travel inside the graph; bigger ones are read one at a time and
scattered to the workers (sent once, never through the scheduler's graph), in batches of one.
Results come back as bytes with the batch and are written out by the task's thread.

**Output** lines reach ``on_output`` while the task runs: workers send them about every
100 ms as events on a topic of this executor (``Worker.log_event``, relayed by the scheduler
to this client, subscribed with ``Client.subscribe_topic``: Dask's own worker-to-client
channel), for all their running tasks in one event. Lines are numbered per run of a task; the
result carries them all again, and :class:`_Lines` delivers each line once, in order.

**Failures end.** A batch is cancelled (and its task processes killed on the worker, by the
plugin's transition hook) on abort or past the job's deadline. No worker able to run a task
(none connected, or none with the resources its manifest asks for) for ``worker_timeout``
seconds, or a scheduler that does not answer for ``scheduler_timeout`` seconds, fails the
waiting tasks with a message saying so; a batch whose workers keep dying fails when Dask
gives up on it (``KilledWorker``). A client that lost its scheduler for good is replaced by a
new one when the scheduler answers again.

**Differences from the local executor**, by design: a worker that dies mid-batch makes Dask
run the batch again elsewhere (up to the scheduler's ``allowed-failures``). The lines a lost
run wrote and sent stay in the job's logs, followed by a ByteNite Local note
(`executors.NOTE_STREAM`) naming the lost worker, then the new run's lines. ``SHARED_CACHE_DIR``
and ``USER_CACHE_DIR`` are per-worker folders.

**Requirements.** A manifest's ``device_requirements`` become Dask worker resources: ``gpu``
→ ``GPU=1`` (always: a GPU app never runs on a worker that does not declare a GPU),
``min_cpu`` → ``CPU=<n>``, ``min_memory`` (GiB) → ``MEMORY=<bytes>``, the latter two only when
some worker declares that resource (``dask worker --resources "CPU=8 MEMORY=32e9 GPU=1"``;
otherwise a note in the job's logs says the requirement is not enforced). Dask counts
resources per running task, so a worker with ``CPU=8`` runs at most two ``min_cpu: 4`` tasks
at once.

The environment a task gets on its worker: the contract's ``APP_PARAMS``, ``CHUNK_NUMBER`` and
``SECRETS``, the per-secret variables its manifest asks for (``ProcessSpec.secret_names``), and
the worker's own paths; it travels sealed (`dask_remote.sealed`), so a worker that logs a
failed task's arguments never logs a secret.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import hashlib
import io
import itertools
import json
import logging
import math
import pickle
import queue
import sys
import tarfile
import threading
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bytenite_nb.server.execution.executors import dask_remote
from bytenite_nb.server.execution.executors.base import (
    NOTE_STREAM,
    Executor,
    ExecutorError,
    OutputCallback,
    ProcessResult,
    ProcessSpec,
)
from bytenite_nb.server.execution.executors.forkserver import ForkServerExecutor
from bytenite_nb.server.execution.resources import manifest_value

__all__ = ["DaskExecutor", "device_resources", "remote_sources"]

log = logging.getLogger(__name__)

_POLL = 0.05  # how often the dispatcher looks at cancel events, deadlines and the cluster
_HEALTH_EVERY = 1.0  # seconds between two looks at the scheduler and its workers
# Only these travel: paths are the worker's own, the rest of the environment is the worker's.
_CONTRACT_KEYS = ("APP_PARAMS", "SECRETS")
_BATCH_SECONDS = 0.2  # the work a batch aims at, once the tasks' duration is known
_MAX_BATCH = 64  # tasks
_BATCH_BYTES = 8 * 1024 * 1024  # of chunks in one batch (a bigger chunk goes alone)
_INLINE_BYTES = 1024 * 1024  # bigger chunks are scattered, not put in the graph
_PIECE = 16 * 1024 * 1024  # big chunks and results travel in pieces of this size
_PULLS = 2  # spooled results read at once (each holds about two pieces here meanwhile)
_BATCHES_PER_THREAD = 2  # in flight: one running and one waiting, on every worker thread
_IN_FLIGHT_PER_THREAD = 32  # default `workers`: tasks the pipeline keeps here at once
_MIN_IN_FLIGHT = 128
_GATHER_AT_ONCE = 16  # finished batches gathered in one call
_GROUP_IDLE = 10.0
_GIB = 1024**3


def _shims_by_value() -> None:
    """Make cloudpickle copy what dask_remote's shims call (rather than name it)."""
    import cloudpickle

    if dask_remote.__name__ not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(dask_remote)


class _ByValue:
    """A callable or object that travels to the scheduler and the workers by value.

    Dask pickles a whole task graph with plain ``pickle`` (cloudpickle only when the graph's
    top-level object comes from a module registered for pickling by value), so a function of
    :mod:`.dask_remote` inside a graph would travel as a reference to ``bytenite_nb`` that a
    worker without bytenite-nb cannot import. This wrapper pickles as ``pickle.loads(<the
    cloudpickle of the object>)``: unpickling it anywhere rebuilds the object itself (its code
    included) with nothing but the standard library and cloudpickle, which ``distributed``
    depends on. The bytes are made once, when the wrapper is. Only functions are wrapped: a
    class pickled by value and unpickled in the process that defined it (a ``LocalCluster``'s
    scheduler runs in the server's process) would have its methods replaced.
    """

    __slots__ = ("blob", "obj")

    def __init__(self, obj: Any) -> None:
        import cloudpickle

        _shims_by_value()
        self.obj = obj
        self.blob = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return pickle.loads, (self.blob,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # (Client.submit wants a callable)
        return self.obj(*args, **kwargs)


def remote_sources() -> tuple[dict[str, str], str]:
    """The files of the private package workers import (see :mod:`.dask_remote`): that
    module and, transitively, the sibling modules it imports relatively; with ``__init__.py``
    and their SHA-256. Raises `ExecutorError` if one imports anything but the standard
    library, ``distributed`` or a sibling (workers would not have it)."""
    folder = Path(dask_remote.__file__).parent
    sources: dict[str, str] = {"__init__.py": ""}
    todo = ["dask_remote"]
    allowed = set(sys.stdlib_module_names) | {"distributed", "__future__"}
    while todo:
        name = todo.pop()
        if f"{name}.py" in sources:
            continue
        text = (folder / f"{name}.py").read_text(encoding="utf-8")
        sources[f"{name}.py"] = text
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                todo += [node.module] if node.module else [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.partition(".")[0]]
            elif isinstance(node, ast.Import):
                tops = [a.name.partition(".")[0] for a in node.names]
            else:
                continue
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                for top in tops:
                    if top not in allowed:
                        raise ExecutorError(f"{name}.py imports {top}, which Dask workers "
                                            "do not have (worker-side code must use the "
                                            "standard library only)")
    digest = hashlib.sha256(json.dumps(sorted(sources.items())).encode()).hexdigest()
    return sources, digest


def device_resources(manifest: dict[str, Any]) -> dict[str, float]:
    """A manifest's ``device_requirements`` as Dask resources: ``GPU`` (1 when ``gpu`` names
    any GPU model, or the number it gives), ``CPU`` (``min_cpu``), ``MEMORY`` (``min_memory``
    GiB, in bytes). Keys in any casing (``device_requirements``, ``deviceRequirements``,
    ``minCpu``, ...); absent, zero or malformed values are left out."""
    req = manifest_value(manifest, "devicerequirements")
    found: dict[str, float] = {}
    gpu = manifest_value(req, "gpu", "gpus")
    if isinstance(gpu, bool):
        gpu = 1 if gpu else 0
    elif isinstance(gpu, (list, tuple)):
        gpu = 1 if any(str(g).strip() for g in gpu) else 0
    elif isinstance(gpu, str):
        gpu = 1 if gpu.strip() else 0
    for name, value, scale in (("GPU", gpu, 1), ("CPU", manifest_value(req, "mincpu"), 1),
                               ("MEMORY", manifest_value(req, "minmemory"), _GIB)):
        with contextlib.suppress(TypeError, ValueError):
            number = float(value) * scale
            if number > 0 and math.isfinite(number):
                found[name] = number
    return found


def _describe_resources(resources: dict[str, float]) -> str:
    return " ".join(f"{name}={value:g}" for name, value in sorted(resources.items()))


def _app_archive(app_dir: Path) -> bytes:
    """``app_dir``'s parent folder layout (``app/...``) as an uncompressed tar, deterministic."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(app_dir.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            info = tar.gettarinfo(str(path), arcname="app/" + path.relative_to(app_dir).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            with open(path, "rb") as f:
                tar.addfile(info, f)
    return buf.getvalue()


class _Lines:
    """Delivers one task's output lines to ``on_output`` once each, in order, from live
    batches and then from the result (see :mod:`.dask_remote`): a line is delivered when
    every line before it was; numbers already delivered are skipped. A batch of another
    attempt than the current one means Dask ran the task again (the worker was lost):
    a note says so and numbering starts afresh; batches of a superseded attempt are dropped."""

    def __init__(self, on_output: OutputCallback) -> None:
        self.on_output = on_output
        self.attempt: str | None = None
        self.worker: str | None = None
        self.next = 0  # the number of the next line to deliver
        self.ahead: dict[int, tuple[str, str]] = {}  # received after a gap
        self.lost: set[str] = set()

    def add(self, attempt: str, first: int, lines: Sequence[Any],
            worker: str | None = None) -> None:
        if attempt in self.lost:
            return
        if attempt != self.attempt:
            if self.attempt is not None:
                self.lost.add(self.attempt)
                where = f" {self.worker}" if self.worker else ""
                again = f" on {worker}" if worker else ""
                self.on_output(NOTE_STREAM, (
                    f"the Dask worker{where} running this task was lost; Dask runs the task "
                    f"again{again}: the lines above are the lost run's output, the lines below "
                    "the new run's"))
            self.attempt, self.next, self.ahead = attempt, 0, {}
        if worker:
            self.worker = worker
        for n in range(max(first, self.next), first + len(lines)):
            self.ahead.setdefault(n, lines[n - first])
        while self.next in self.ahead:
            stream, line = self.ahead.pop(self.next)
            self.next += 1
            self.on_output(stream, line)


# What must agree between this server and the cluster: the shims travel as bytecode (specific
# to a Python minor version) and Dask's own protocol.
_MUST_MATCH = ("python", "distributed", "cloudpickle", "msgpack")


def _open_client(address: str, timeout: float) -> Any:
    """A ``distributed.Client`` for ``address``, without Dask's warning about packages that
    only this side has (numpy, pandas: workers need neither); `_version_problems` checks
    what matters."""
    from distributed import Client
    from distributed.versions import VersionMismatchWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VersionMismatchWarning)
        return Client(address, set_as_default=False, timeout=f"{timeout}s")


def _version_problems(client: Any) -> tuple[list[str], list[str]]:
    """``(scheduler problems, worker problems)``: where the scheduler or a worker runs another
    Python minor version or another version of a package in `_MUST_MATCH` than this server."""
    try:
        versions = client.get_versions(check=False)
    except Exception:  # an old scheduler, a hiccup: tasks will tell
        return [], []

    def short(name: str, value: Any) -> str | None:
        if value is None:
            return None
        return ".".join(str(value).split(".")[:2]) if name == "python" else str(value)

    ours = versions.get("client", {}).get("packages", {})

    def differences(packages: dict[str, Any]) -> list[str]:
        return [f"{name} {short(name, packages.get(name))} (this server: "
                f"{short(name, ours.get(name))})" for name in _MUST_MATCH
                if short(name, packages.get(name)) != short(name, ours.get(name))]

    on_scheduler = differences(versions.get("scheduler", {}).get("packages", {}))
    on_workers = [f"{addr}: {', '.join(diff)}"
                  for addr, info in sorted((versions.get("workers") or {}).items())
                  if (diff := differences(info.get("packages", {})))]
    return on_scheduler, on_workers


class _Health:
    """What the executor knows about its cluster, refreshed every second by a thread: whether
    the scheduler answers and which workers it has, with their threads and resources."""

    def __init__(self, executor: DaskExecutor) -> None:
        self.executor = executor
        self.workers: dict[str, dict[str, Any]] = {}
        self.unreachable: str | None = None  # why the last check failed
        self.last_ok = time.monotonic()  # when the scheduler last answered
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="bytenite-dask-health",
                                       daemon=True)

    def check(self) -> None:
        """Ask the scheduler for its workers now (at most ``scheduler_timeout`` seconds)."""
        ex = self.executor
        client = ex.client
        try:
            if client.status != "running":
                raise ConnectionError(f"the client is {client.status}")
            info = client.sync(client.scheduler.identity, n_workers=-1,
                               callback_timeout=ex.scheduler_timeout)
            workers = dict(info.get("workers") or {})
        except Exception as exc:  # unreachable, closed, timed out
            if self.unreachable is None:
                log.warning("the Dask scheduler at %s does not answer: %s: %s",
                            ex.address, type(exc).__name__, exc)
            self.unreachable = f"{type(exc).__name__}: {exc}".rstrip(": ")
            return
        if self.unreachable is not None:
            log.warning("the Dask scheduler at %s answers again", ex.address)
        if self.workers and not workers:
            log.warning("the Dask scheduler at %s has no workers left", ex.address)
        self.unreachable, self.last_ok, self.workers = None, time.monotonic(), workers

    def _loop(self) -> None:
        while not self.stopped.wait(_HEALTH_EVERY):
            self.check()

    @property
    def threads(self) -> int:
        """Worker threads in the cluster (at least 1)."""
        return max(1, sum(int(w.get("nthreads") or 1) for w in self.workers.values()))

    def declared(self, name: str) -> bool:
        """Whether some worker declares the resource ``name``."""
        return any(name in (w.get("resources") or {}) for w in self.workers.values())

    def offers(self, resources: dict[str, float]) -> bool:
        """Whether some connected worker can run a task that needs ``resources``."""
        return any(all(float((w.get("resources") or {}).get(k, 0)) >= v
                       for k, v in resources.items())
                   for w in self.workers.values())

    def unreachable_for(self, since: float) -> str | None:
        """Why a task submitted at ``since`` must fail now, because the scheduler has not
        answered for ``scheduler_timeout`` seconds (counted from ``since`` at the earliest)."""
        ex, now = self.executor, time.monotonic()
        if now - max(self.last_ok, since) > ex.scheduler_timeout:
            return (f"the Dask scheduler at {ex.address} has not answered for "
                    f"{now - self.last_ok:.0f} s (scheduler_timeout {ex.scheduler_timeout:g} s;"
                    f" last error: {self.unreachable or 'none'})")
        return None


@dataclass(eq=False)
class _Task:
    """One app task waiting in :meth:`DaskExecutor.run`: its thread reads ``inbox`` (live
    output items, then ``("done", outcome)``)."""

    chunk: str
    data_path: Path
    size: int
    results_dir: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    inbox: queue.SimpleQueue[tuple[str, Any]] = field(default_factory=queue.SimpleQueue)
    queued: float = field(default_factory=time.monotonic)
    finished: bool = False


@dataclass(eq=False)
class _Group:
    """The queued and running tasks of one job's app: what they share travels once per
    batch (the archive future, the sealed environment, the timeout, the resources)."""

    key: tuple[Any, ...]
    cancel: threading.Event | None
    deadline: float | None
    timeout: float | None
    digest: str
    archive: Any
    entrypoint: str
    env: _ByValue
    resources: dict[str, float]
    pending: collections.deque[_Task] = field(default_factory=collections.deque)
    batches: set[_Batch] = field(default_factory=set)
    seconds: float | None = None  # a task's mean duration on a worker, once measured
    unserved_since: float | None = None  # since when no worker can run these tasks
    #: When a task last came or went: an idle group is forgotten after `_GROUP_IDLE` seconds
    #: (kept meanwhile, so the next tasks of its job are batched with what it measured).
    active: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Batch:
    group: _Group
    tasks: list[_Task]
    future: Any = None
    scattered: list[Any] = field(default_factory=list)
    submitted: float = field(default_factory=time.monotonic)


class DaskExecutor:
    """Sends app tasks to a Dask cluster in batches; runs partitioner and assembler locally.

    ``scheduler`` is an address (``tcp://host:port``) or a ``distributed.Client``.
    ``workers`` is how many tasks the pipeline may hand over at once (default: 16 per worker
    thread of the cluster when connecting, at least 64): the queue the batches are made from.
    ``connect_timeout`` (seconds) bounds the wait for the scheduler at start-up, and how long
    a task waits while the scheduler does not answer; ``worker_timeout`` (seconds) how long
    tasks wait while no worker can run them (none connected, or none with the resources
    their manifest asks for). Past either, the tasks fail with the reason.
    """

    def __init__(self, scheduler: Any, workers: int | None = None, *,
                 engine_executor: Executor | None = None,
                 connect_timeout: float = 10.0, worker_timeout: float = 60.0) -> None:
        try:
            import cloudpickle  # noqa: F401  (only to tell a missing extra early)
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ExecutorError(
                "the dask executor needs the 'dask' extra: pip install 'bytenite-nb[dask]'"
            ) from exc
        self.scheduler_timeout = float(connect_timeout)
        self.worker_timeout = float(worker_timeout)
        self._sources, self._digest = remote_sources()
        self._plugin_name = f"bytenite-local-{self._digest[:12]}-{uuid.uuid4().hex[:8]}"
        _shims_by_value()  # (Dask pickles the plugin with cloudpickle, by value then)
        self._plugin = dask_remote.make_plugin(self._plugin_name, self._sources, self._digest)
        self._call = _ByValue(dask_remote.call)
        self._pulls = threading.BoundedSemaphore(_PULLS)
        self._next_worker = itertools.count()
        self._hold = _ByValue(dask_remote.hold)
        self._topic = f"bytenite-output-{uuid.uuid4().hex}"
        if isinstance(scheduler, Client):
            self.client, self._own_client = scheduler, False
        else:
            try:
                self.client = _open_client(scheduler, connect_timeout)
            except Exception as exc:  # refused, timed out, a malformed address, not Dask...
                raise ExecutorError(
                    f"cannot reach the Dask scheduler at {scheduler} (waited up to "
                    f"{connect_timeout:g} s): {type(exc).__name__}: {exc}") from None
            self._own_client = True
        self.address: str = self.client.scheduler.address
        try:
            self._check_versions()
            self._attach(self.client)
        except BaseException:
            if self._own_client:
                self.client.close()
            raise
        self._health = _Health(self)
        self._health.check()
        self.workers = max(1, workers or max(_MIN_IN_FLIGHT,
                                             _IN_FLIGHT_PER_THREAD * self._health.threads))
        #: Partitioner and assembler run here, on the server.
        self.engine_executor: Executor = engine_executor or ForkServerExecutor()
        self._own_engine_executor = engine_executor is None
        self._lock = threading.Lock()  # the client and the app archives
        self._apps: dict[str, tuple[tuple[int, int], str, Any]] = {}
        self._reconnect_error: tuple[float, str] | None = None
        self._cv = threading.Condition()  # groups, batches and the tasks' state
        self._groups: dict[tuple[Any, ...], _Group] = {}
        self._in_flight: set[_Batch] = set()
        self._tokens: dict[str, _Task] = {}
        self._closed = False
        self._finished: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._round = itertools.count()
        self._threads = [
            threading.Thread(target=self._dispatch_loop, name="bytenite-dask-dispatch",
                             daemon=True),
            threading.Thread(target=self._collect_loop, name="bytenite-dask-collect",
                             daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._health.thread.start()

    # -- the cluster ----------------------------------------------------------------------

    def _check_versions(self) -> None:
        on_scheduler, on_workers = _version_problems(self.client)
        if on_scheduler:
            raise ExecutorError(
                f"the Dask scheduler at {self.address} runs {', '.join(on_scheduler)}: it "
                "could not read the tasks this server sends. Run the scheduler and the "
                f"workers with Python {sys.version_info.major}.{sys.version_info.minor} and "
                f"`pip install distributed=={version('distributed')} "
                f"cloudpickle=={version('cloudpickle')}`")
        for problem in on_workers:
            log.warning("Dask worker %s: tasks sent to it will fail; install this server's "
                        "versions there", problem)

    def _attach(self, client: Any) -> None:
        """Register the worker plugin on ``client``'s cluster and listen to the output topic."""
        client.register_plugin(self._plugin, name=self._plugin_name)
        client.subscribe_topic(self._topic, self._on_event)

    def _on_event(self, event: Any) -> None:
        """On the client's event loop: hand each task's new output lines to its thread."""
        try:
            items = event[1]["tasks"]
        except Exception:  # not ours: the results still carry every line
            return
        for item in items if isinstance(items, (list, tuple)) else ():
            try:
                task = self._tokens.get(item["token"])
                if task is not None and isinstance(item["attempt"], str) and isinstance(
                        item["first"], int) and isinstance(item["lines"], (list, tuple)):
                    task.inbox.put(("lines", item))
            except Exception:  # malformed: the result still carries every line
                continue

    def _connected(self) -> str | None:
        """``None`` when the client can take tasks; else why not. A client that gave up on a
        lost scheduler (after ``scheduler_timeout`` seconds of trying) is replaced by a new
        one if the scheduler answers again (a restarted scheduler is picked up by the next
        task), at most once a second."""
        with self._lock:
            status = self.client.status
            if status not in ("closing", "closed", "failed"):
                return None
            if not self._own_client:
                return f"the Dask client given to ByteNite Local is {status}"
            if self._reconnect_error and time.monotonic() - self._reconnect_error[0] < 1.0:
                return self._reconnect_error[1]
            try:
                client = _open_client(self.address, self.scheduler_timeout)
                self._attach(client)
            except Exception as exc:
                self._reconnect_error = (time.monotonic(), (
                    f"lost the Dask scheduler at {self.address} and cannot reach it again "
                    f"(waited up to {self.scheduler_timeout:g} s): {type(exc).__name__}: {exc}"))
                return self._reconnect_error[1]
            log.warning("reconnected to the Dask scheduler at %s", self.address)
            self.client, self._reconnect_error = client, None
            self._apps.clear()  # (their futures belonged to the old client)
        self._health.check()
        return None

    def _failure(self, exc: BaseException | None) -> str:
        """The message for the tasks of a batch whose future raised ``exc`` (``None``: it was
        cancelled without us asking)."""
        from distributed import KilledWorker

        if self.client.status != "running" or self._health.unreachable or exc is None:
            # Its future was cancelled because the client lost the scheduler.
            why = self._health.unreachable or f"the client is {self.client.status}"
            return (f"lost the connection to the Dask scheduler at {self.address} while the "
                    f"task ran ({why})")
        if isinstance(exc, KilledWorker):
            return (f"the Dask workers running it died ({exc}); each worker's own log says "
                    "why (out of memory, killed, ...)")
        return f"the Dask task failed: {type(exc).__name__}: {exc}"

    def _app(self, app_dir: Path) -> tuple[str, Any]:
        """(hash, a Dask future of the app archive), built and sent once per version."""
        stamp = max(((p.stat().st_mtime_ns, p.stat().st_size) for p in app_dir.rglob("*")
                     if p.is_file()), default=(0, 0))
        key = str(app_dir)
        with self._lock:
            cached = self._apps.get(key)
            # (A client that lost its scheduler cancelled every future it had, this one too.)
            if cached and cached[0] == stamp and cached[2].status not in ("cancelled", "lost"):
                return cached[1], cached[2]
            archive = _app_archive(app_dir)
            digest = hashlib.sha256(archive).hexdigest()
            future = self.client.submit(self._hold, archive, pure=False,
                                        key=f"bytenite-app-{digest[:16]}-{uuid.uuid4().hex[:8]}")
            self._apps[key] = (stamp, digest, future)
            return digest, future

    def close(self) -> None:
        """Fail what still waits, unregister the plugin (its fork servers stop), close the
        client (if this executor opened it) and the local engine executor."""
        with self._cv:
            self._closed = True
            groups = list(self._groups.values())
            self._cv.notify_all()
        for group in groups:
            self._end_group(group, {"outcome": "error", "error": "the executor was closed"})
        self._finished.put(None)
        self._health.stopped.set()
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self._topic)
        with contextlib.suppress(Exception):
            self.client.unregister_worker_plugin(self._plugin_name)
        if self._own_client:
            with contextlib.suppress(Exception):
                self.client.close()
        if self._own_engine_executor:
            self.engine_executor.close()

    # -- one task (the pipeline's thread) -------------------------------------------------

    def run(
        self,
        spec: ProcessSpec,
        on_output: OutputCallback,
        *,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> ProcessResult:
        """Run one app task on the cluster; blocks until it ends (see the module docstring)."""
        if "TASK_DIR" not in spec.env:  # partitioner/assembler: not a task, stays here
            return self.engine_executor.run(spec, on_output, cancel=cancel, timeout=timeout,
                                            deadline=deadline)
        started = time.monotonic()
        task, note = self._enqueue(spec, cancel, timeout, deadline)
        if isinstance(task, ProcessResult):
            return task
        if note:
            on_output(NOTE_STREAM, note)
        lines = _Lines(on_output)
        try:
            while True:
                try:
                    kind, item = task.inbox.get(timeout=1.0)
                except queue.Empty:
                    if self._closed:
                        return ProcessResult(None, "error", error="the executor was closed")
                    continue
                if kind == "lines":
                    lines.add(item["attempt"], item["first"], item["lines"], item.get("worker"))
                    continue
                return self._ended(task, item, lines, started)
        finally:
            self._tokens.pop(task.token, None)

    def _enqueue(self, spec: ProcessSpec, cancel: threading.Event | None,
                 timeout: float | None,
                 deadline: float | None) -> tuple[_Task | ProcessResult, str | None]:
        """Queue the task in its group (made on its first task); returns it and a note for
        its logs (the group's first task only), or a `ProcessResult` if it cannot go."""
        problem = self._connected()
        if problem is not None:
            return ProcessResult(None, "error", error=problem), None
        app_dir = Path(spec.path0 or Path(spec.script).parent)
        env = {k: spec.env[k] for k in (*_CONTRACT_KEYS, *spec.secret_names) if k in spec.env}
        # One group per job and app: the app folder is read (and sent, if it changed) when
        # its job's first task comes, not for every task.
        key = (id(cancel), str(app_dir), timeout, deadline, tuple(sorted(env.items())))
        try:
            data_path = Path(spec.env["TASK_DIR"]) / "data.bin"
            size = data_path.stat().st_size
            with self._cv:
                group = self._groups.get(key)
            digest, archive = (group.digest, group.archive) if group else self._app(app_dir)
        except (OSError, ValueError) as exc:
            return ProcessResult(None, "error", error=f"cannot prepare the task: {exc}"), None
        task = _Task(chunk=spec.env.get("CHUNK_NUMBER", "0"), data_path=data_path, size=size,
                     results_dir=Path(spec.env["TASK_RESULTS_DIR"]))
        note = None
        with self._cv:
            if self._closed:
                return ProcessResult(None, "error", error="the executor was closed"), None
            group = self._groups.get(key)
            if group is None:
                resources, note = self._resources(app_dir)
                group = self._groups[key] = _Group(
                    key=key, cancel=cancel, deadline=deadline, timeout=timeout, digest=digest,
                    archive=archive, entrypoint=Path(spec.script).relative_to(app_dir).as_posix(),
                    env=_ByValue(dask_remote.sealed(env)), resources=resources)
            group.pending.append(task)
            group.active = time.monotonic()
            self._tokens[task.token] = task
            self._cv.notify_all()
        return task, note

    def _resources(self, app_dir: Path) -> tuple[dict[str, float], str | None]:
        """The Dask resources the app's manifest asks for (see `device_resources`), keeping
        ``CPU`` and ``MEMORY`` only if a worker declares them; and a note saying what is not
        enforced, if anything."""
        try:
            manifest = json.loads((app_dir.parent / "manifest.json").read_text("utf-8"))
        except (OSError, ValueError):
            manifest = {}
        wanted = device_resources(manifest)
        kept = {k: v for k, v in wanted.items() if k == "GPU" or self._health.declared(k)}
        dropped = {k: v for k, v in wanted.items() if k not in kept}
        note = None
        if dropped:
            note = (f"the manifest's requirements {_describe_resources(dropped)} are not "
                    f"enforced: no Dask worker declares {' or '.join(sorted(dropped))} as a "
                    "resource (dask worker --resources \"CPU=N MEMORY=BYTES\")")
        return kept, note

    def _ended(self, task: _Task, outcome: dict[str, Any], lines: _Lines,
               started: float) -> ProcessResult:
        """The task's `ProcessResult`: deliver the lines that did not come live and write
        its result files."""
        if outcome.get("attempt") is not None:
            lines.add(outcome["attempt"], 0, outcome.get("lines") or (), outcome.get("worker"))
        try:
            for rel, content in (outcome.get("results") or {}).items():
                target = task.results_dir.joinpath(*rel.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, dict):  # big: read from the worker in pieces
                    self._pull(outcome.get("worker"), content, target)
                else:
                    target.write_bytes(content)
        except Exception as exc:  # a full disk, the worker holding a big result gone, ...
            return ProcessResult(None, "error", error=f"cannot get the task's results: "
                                 f"{type(exc).__name__}: {exc}",
                                 duration=time.monotonic() - started)
        return ProcessResult(
            exit_code=outcome.get("exit_code"),
            outcome=outcome.get("outcome", "error"),
            last_stderr=outcome.get("last_stderr"),
            pid=outcome.get("pid"),
            duration=time.monotonic() - started,
            error=outcome.get("error"),
        )

    # -- the dispatcher thread --------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while True:
            with self._cv:
                if self._closed:
                    return
                if not any(g.pending for g in self._groups.values()) or self._full():
                    self._cv.wait(_POLL)
                groups = list(self._groups.values())
            try:
                for group in groups:
                    self._watch(group)
                self._submit_ready()
            except Exception:  # a bug here must not leave every task waiting forever
                log.exception("the Dask dispatcher failed; failing the waiting tasks")
                for group in groups:
                    self._end_group(group, {"outcome": "error",
                                            "error": "internal error in the Dask executor"})

    def _full(self) -> bool:
        return len(self._in_flight) >= _BATCHES_PER_THREAD * self._health.threads

    def _watch(self, group: _Group) -> None:
        """End ``group``'s tasks if its job was aborted or ran out of time, or if the cluster
        cannot run them (see the module docstring)."""
        if group.cancel is not None and group.cancel.is_set():
            self._end_group(group, {"outcome": "cancelled"})
            return
        if group.deadline is not None and time.monotonic() > group.deadline:
            self._end_group(group, {"outcome": "deadline"})
            return
        with self._cv:
            waiting = [t.queued for t in group.pending] + [b.submitted for b in group.batches]
            if not waiting and time.monotonic() - group.active > _GROUP_IDLE:
                self._groups.pop(group.key, None)
        if not waiting:
            return
        health, now = self._health, time.monotonic()
        problem = health.unreachable_for(min(waiting))
        if problem is None and not health.unreachable:
            if health.offers(group.resources):
                group.unserved_since = None
            else:
                group.unserved_since = group.unserved_since or now
                if now - group.unserved_since > self.worker_timeout:
                    problem = self._unserved(group.resources)
        if problem is not None:
            log.warning("tasks gave up waiting on Dask: %s", problem)
            self._end_group(group, {"outcome": "error", "error": problem})

    def _unserved(self, resources: dict[str, float]) -> str:
        if not self._health.workers:
            return (f"no Dask worker has been connected to the scheduler at {self.address} for "
                    f"{self.worker_timeout:g} s (worker_timeout): start some with "
                    f"`dask worker {self.address}`")
        wanted = _describe_resources(resources)
        return (f"no Dask worker of the scheduler at {self.address} has offered the resources "
                f"the app's manifest asks for ({wanted}) for {self.worker_timeout:g} s "
                f"(worker_timeout): start some with `dask worker {self.address} --resources "
                f"\"{wanted}\"`")

    def _end_group(self, group: _Group, outcome: dict[str, Any]) -> None:
        """End every task of ``group`` with ``outcome``; cancel its batches."""
        with self._cv:
            tasks = list(group.pending)
            group.pending.clear()
            batches = list(group.batches)
            for batch in batches:
                tasks += batch.tasks
                self._in_flight.discard(batch)
            group.batches.clear()
            self._groups.pop(group.key, None)
            self._cv.notify_all()
        for batch in batches:
            with contextlib.suppress(Exception):
                batch.future.cancel()
            for future in batch.scattered:
                with contextlib.suppress(Exception):
                    future.release()
        for task in tasks:
            self._deliver(task, dict(outcome))

    def _deliver(self, task: _Task, outcome: dict[str, Any]) -> None:
        if not task.finished:
            task.finished = True
            task.inbox.put(("done", outcome))

    def _submit_ready(self) -> None:
        """Make batches while there are queued tasks and room in flight, taking the groups in
        turns, and submit them: those of one group with one ``Client.map`` (one message to
        the scheduler for all of them)."""
        while True:
            made: dict[int, list[_Batch]] = {}
            with self._cv:
                if self._closed:
                    return
                while not self._full():
                    groups = [g for g in self._groups.values() if g.pending]
                    if not groups:
                        break
                    group = groups[next(self._round) % len(groups)]
                    batch = _Batch(group, self._take(group))
                    group.batches.add(batch)
                    self._in_flight.add(batch)
                    made.setdefault(id(group), []).append(batch)
            if not made:
                return
            for batches in made.values():
                try:
                    self._submit(batches)
                except Exception as exc:
                    log.warning("cannot submit to Dask: %s: %s", type(exc).__name__, exc)
                    for batch in batches:
                        self._finish_batch(batch, None, error=f"cannot submit the task to "
                                                              f"Dask: {type(exc).__name__}: {exc}")

    def _take(self, group: _Group) -> list[_Task]:
        """The next batch's tasks from ``group``'s queue (see the module docstring)."""
        fair = math.ceil(len(group.pending) / (_BATCHES_PER_THREAD * self._health.threads))
        want = 1 if group.seconds is None else int(_BATCH_SECONDS / max(group.seconds, 1e-4))
        size = max(1, min(fair, want, _MAX_BATCH))
        tasks: list[_Task] = []
        total = 0
        while group.pending and len(tasks) < size:
            nxt = group.pending[0]
            if tasks and (nxt.size > _INLINE_BYTES or total + nxt.size > _BATCH_BYTES):
                break
            tasks.append(group.pending.popleft())
            total += nxt.size
            if nxt.size > _INLINE_BYTES:
                break  # a big chunk goes alone
        return tasks

    def _submit(self, batches: list[_Batch]) -> None:
        """Submit ``batches`` (all of one group) as Dask tasks."""
        group = batches[0].group
        datas: list[list[Any]] = []
        for batch in batches:
            datas.append([self._scatter(t.data_path, group.resources, batch)
                          if t.size > _INLINE_BYTES else t.data_path.read_bytes()
                          for t in batch.tasks])
        n = len(batches)
        futures = self.client.map(
            self._call, [self._plugin_name] * n, ["run_batch"] * n, [group.archive] * n,
            [group.digest] * n, [group.entrypoint] * n,
            [[t.chunk for t in b.tasks] for b in batches],
            [[t.token for t in b.tasks] for b in batches], datas, [group.env] * n,
            [group.timeout] * n, [self._topic] * n,
            key=[f"bytenite-batch-{b.tasks[0].chunk}-{uuid.uuid4().hex[:12]}" for b in batches],
            pure=False, resources=group.resources or None)
        for batch, future in zip(batches, futures, strict=True):
            batch.future = future
            future.add_done_callback(lambda _, batch=batch: self._finished.put(batch))

    def _scatter(self, path: Path, resources: dict[str, float], batch: _Batch) -> list[Any]:
        """A big chunk sent to one worker now (one that can run the batch), piece by piece,
        read just before it goes: futures of its pieces, in order. The server holds one
        piece at a time; the graph only names them."""
        able = sorted(addr for addr, w in self._health.workers.items()
                      if all(float((w.get("resources") or {}).get(k, 0)) >= v
                             for k, v in resources.items()))
        where = [able[next(self._next_worker) % len(able)]] if able else None
        pieces: list[Any] = []
        with open(path, "rb") as f:
            while piece := f.read(_PIECE):
                future = self.client.scatter(piece, workers=where, hash=False,
                                             timeout=self.scheduler_timeout + self.worker_timeout)
                del piece
                batch.scattered.append(future)
                pieces.append(future)
        return pieces

    def _pull(self, worker: str | None, spooled: dict[str, Any], target: Path) -> None:
        """Copy a result file spooled on ``worker`` (see `dask_remote._collect`) to
        ``target``, a piece at a time, then have the worker remove it."""
        path, size = str(spooled["spooled"]), int(spooled["size"])
        where = {"workers": [worker], "allow_other_workers": False} if worker else {}
        with self._pulls, open(target, "wb") as f:
            for offset in range(0, size, _PIECE):
                future = self.client.submit(self._call, self._plugin_name, "read_spooled",
                                            path, offset, _PIECE, pure=False, **where)
                f.write(future.result(timeout=self.scheduler_timeout + self.worker_timeout))
                future.release()
        with contextlib.suppress(Exception):
            from distributed import fire_and_forget

            fire_and_forget(self.client.submit(self._call, self._plugin_name, "drop_spooled",
                                               path, pure=False, **where))

    # -- the collector thread ---------------------------------------------------------------

    def _collect_loop(self) -> None:
        while True:
            first = self._finished.get()
            if first is None:
                return
            done = [first]
            while len(done) < _GATHER_AT_ONCE:
                try:
                    more = self._finished.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._finished.put(None)
                    break
                done.append(more)
            try:
                self._collect(done)
            except Exception:  # a bug here must not leave the batch's tasks waiting forever
                log.exception("collecting Dask results failed")
                for batch in done:
                    self._finish_batch(batch, None, error="internal error in the Dask executor")

    def _collect(self, done: list[_Batch]) -> None:
        ok = [b for b in done if b.future.status == "finished"]
        # Small batches in one gather; a batch of big chunks alone (its results are likely
        # big too), so that the server holds one of them at a time.
        small = [b for b in ok if sum(t.size for t in b.tasks) <= _INLINE_BYTES]
        rounds = ([small] if small else []) + [[b] for b in ok if b not in small]
        for batches in rounds:
            try:
                results = self.client.gather([b.future for b in batches], errors="raise")
            except Exception:  # one of them went meanwhile: one by one
                results = []
                for batch in batches:
                    try:
                        results.append(batch.future.result())
                    except Exception as exc:
                        results.append(exc)
            for batch, result in zip(batches, results, strict=True):
                if isinstance(result, BaseException):
                    self._finish_batch(batch, None, error=self._failure(result))
                else:
                    self._finish_batch(batch, result)
            del results
        for batch in done:
            if batch.future.status == "error":
                try:
                    exc = batch.future.exception()
                except Exception as lost:
                    exc = lost
                self._finish_batch(batch, None, error=self._failure(exc))
            elif batch.future.status != "finished":  # cancelled: by us, or with the client
                self._finish_batch(batch, None, error=self._failure(None))

    def _finish_batch(self, batch: _Batch, result: dict[str, Any] | None, *,
                      error: str | None = None) -> None:
        """Deliver a batch's outcome to its tasks (unless they ended already)."""
        group = batch.group
        with self._cv:
            if batch not in group.batches:
                return  # ended with its group (cancelled, failed, closed)
            group.batches.discard(batch)
            group.active = time.monotonic()
            self._in_flight.discard(batch)
            self._cv.notify_all()
        for future in batch.scattered:
            with contextlib.suppress(Exception):
                future.release()
        if result is None:
            for task in batch.tasks:
                self._deliver(task, {"outcome": "error", "error": error})
            return
        durations = []
        for task, outcome in zip(batch.tasks, result["tasks"], strict=True):
            outcome["worker"] = result.get("worker")
            if outcome.get("outcome") == "exited":
                durations.append(float(outcome.get("duration") or 0.0))
            self._deliver(task, outcome)
        if durations:
            mean = sum(durations) / len(durations)
            group.seconds = mean if group.seconds is None else 0.5 * (group.seconds + mean)
