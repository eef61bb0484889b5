"""Per-app Python environments: what ByteNite's containers gave apps, built locally.

On ByteNite each engine runs in the container its manifest names, which carries the app's
packages. ByteNite Local builds a virtual environment instead, from the app folder's
``requirements.txt`` (or the ``[project] dependencies`` of its ``pyproject.toml``), and runs
the app's Python processes with that environment's interpreter. The server's own environment
never gets an app's packages.

* **Which file**: the first of ``requirements.txt``, ``pyproject.toml`` next to the entrypoint
  (``app/``, where ByteNite's Dockerfiles copy it from), then the same two at the folder's root.
  A ``pyproject.toml`` without ``[project] dependencies`` does not count (it may configure
  tools only); a ``requirements.txt`` counts even when it lists nothing (no environment then).
* **One environment per requirement set**: keyed by the SHA-256 of the normalised lines
  (comments and blank lines dropped, sorted) and the Python version, in ``<root>/py3.11-<hash>``.
  Apps with the same requirements share it; it survives restarts.
* **Built once, under a lock** (``flock`` on ``<root>/.locks/<name>.lock``, so concurrent jobs,
  and servers sharing the folder, wait for one build); the build's output lines go to the
  job's log as they come; an environment is complete only once ``bytenite-env.json`` is
  written in it, so a build that was killed is started again from scratch.
* **Installer**: ``uv`` (its Python package's binary, else one on ``PATH``) or, without it,
  ``python -m venv`` + ``pip``. Relative paths inside a ``requirements.txt`` resolve from its
  folder (the installer runs there); the files they name are not part of the key.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BuildCancelled",
    "BuildError",
    "EnvironmentInUse",
    "Environments",
    "Requirements",
    "RequirementsError",
    "find_requirements",
]

MARKER = "bytenite-env.json"
_LAST_USED = ".last-used"
_LOCKS = ".locks"
#: How many of the installer's last lines a failed build's message quotes.
ERROR_LINES = 4
_POLL = 0.1
_NAME = re.compile(r"^py\d+\.\d+-[0-9a-f]{16}$")
#: Installer lines that mean nothing in a job's log (uv's hint to activate the venv).
_NOT_SHOWN = ("Activate with:",)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# uv draws its error chains with these; the message keeps the words.
_DECORATION = re.compile(r"^[\s×╰─▶│├└┬┼╭╮╯┃━•·]+")


class RequirementsError(ValueError):
    """A requirements file that cannot be read; the message names it and the problem."""


class BuildError(RuntimeError):
    """Building an environment failed; the message ends with the installer's last lines."""


class BuildCancelled(RuntimeError):
    """The job was aborted (or timed out) while its environment was being built."""


class EnvironmentInUse(RuntimeError):
    """An environment cannot be removed now (a job uses it, or it is being built)."""


@dataclass(frozen=True)
class Requirements:
    """An engine's requirement set: the file it came from and its normalised lines."""

    file: Path
    lines: tuple[str, ...]

    def label(self, folder: Path | None = None) -> str:
        """The file relative to the engine's folder (``app/requirements.txt``)."""
        if folder is not None:
            with contextlib.suppress(ValueError):
                return self.file.relative_to(folder).as_posix()
        return self.file.name


def _normalise(lines: list[str]) -> tuple[str, ...]:
    kept = []
    for line in lines:
        text = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if text:
            kept.append(" ".join(text.split()))
    return tuple(sorted(set(kept)))


def _from_pyproject(path: Path) -> tuple[str, ...] | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise RequirementsError(f"{path.name}: reading pyproject.toml needs Python 3.11 or "
                                "later; list the dependencies in a requirements.txt") from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RequirementsError(f"cannot read {path.name}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RequirementsError(f"{path.name} is not valid TOML: {exc}") from None
    project = data.get("project")
    deps = project.get("dependencies") if isinstance(project, dict) else None
    if deps is None:
        return None
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise RequirementsError(f"{path.name}: [project] dependencies must be a list of "
                                'requirement strings such as ["requests>=2"]')
    return _normalise(deps)


def find_requirements(folder: Path, entrypoint: str) -> Requirements | None:
    """The requirement set of the engine in ``folder`` whose entrypoint is
    ``app/<entrypoint>``, or None when it has none. Raises `RequirementsError` for a file
    that cannot be read."""
    beside = (folder / "app" / entrypoint).parent
    for where in dict.fromkeys((beside, folder)):
        txt = where / "requirements.txt"
        if txt.is_file():
            try:
                text = txt.read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as exc:
                raise RequirementsError(f"cannot read {txt.name}: {exc}") from None
            return Requirements(txt, _normalise(text.splitlines()))
        toml = where / "pyproject.toml"
        if toml.is_file():
            lines = _from_pyproject(toml)
            if lines is not None:
                return Requirements(toml, lines)
    return None


def _python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00",
                                                                                       "Z")


def _clean(line: str) -> str:
    return _DECORATION.sub("", _ANSI.sub("", line)).strip()


def _size(path: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def _uv_binary() -> str | None:
    try:
        import uv  # the uv package on PyPI ships its binary

        found = uv.find_uv_bin()
        if found and os.access(found, os.X_OK):
            return str(found)
    except (ImportError, FileNotFoundError, AttributeError):
        pass
    return shutil.which("uv")


class Environments:
    """The environments under ``root``: build (`prepare`), use, list and remove them.

    ``installer``: ``"auto"`` (uv when available, else venv + pip), ``"uv"`` or ``"pip"``.
    Thread-safe; several servers may share ``root``.
    """

    def __init__(self, root: Path, *, installer: str = "auto") -> None:
        if installer not in ("auto", "uv", "pip"):
            raise ValueError(f"installer must be auto, uv or pip, got {installer!r}")
        self.root = Path(root)
        self.installer = installer
        self._lock = threading.Lock()
        self._users: dict[str, int] = {}

    # -- names and paths ---------------------------------------------------------------------

    def name_for(self, requirements: Requirements) -> str:
        """``py3.11-<16 hex digits>``: the Python version and the requirement set's hash."""
        digest = hashlib.sha256()
        digest.update(f"{sys.implementation.name} {sys.version_info[:3]}\n".encode())
        digest.update("\n".join(requirements.lines).encode())
        return f"py{_python_tag()}-{digest.hexdigest()[:16]}"

    def path(self, name: str) -> Path:
        return self.root / name

    def python(self, name: str) -> Path:
        """The environment's interpreter."""
        return self.path(name) / "bin" / "python"

    def ready(self, name: str) -> bool:
        """Whether ``name`` is completely built."""
        return (self.path(name) / MARKER).is_file() and self.python(name).exists()

    def _which_installer(self) -> tuple[str, str | None]:
        uv = _uv_binary() if self.installer in ("auto", "uv") else None
        if uv:
            return "uv", uv
        if self.installer == "uv":
            raise BuildError("the uv installer was asked for (--env-installer uv) and is not "
                             "installed: pip install uv, or use --env-installer pip")
        return "pip", None

    # -- building ----------------------------------------------------------------------------

    def prepare(self, requirements: Requirements, *, on_line: Callable[[str], None],
                cancel: threading.Event | None = None,
                deadline: float | None = None) -> str:
        """The name of the environment for ``requirements``, built first if needed (its
        output lines go to ``on_line``). Waits for a build another job (or server) is running.
        Raises `BuildError` (with the installer's last lines) or `BuildCancelled`."""
        name = self.name_for(requirements)
        if self.ready(name):
            return name
        with self._build_lock(name, on_line, cancel, deadline):
            if not self.ready(name):  # (someone else may have built it meanwhile)
                self._build(name, requirements, on_line, cancel, deadline)
        return name

    @contextlib.contextmanager
    def _build_lock(self, name: str, on_line: Callable[[str], None],
                    cancel: threading.Event | None, deadline: float | None) -> Iterator[None]:
        folder = self.root / _LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            said = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not said:
                        on_line(f"waiting for environment {name}: another job is building it")
                        said = True
                    _check_stop(cancel, deadline)
                    time.sleep(_POLL)
            yield
        finally:
            os.close(fd)  # (releases the lock)

    def _build(self, name: str, requirements: Requirements, on_line: Callable[[str], None],
               cancel: threading.Event | None, deadline: float | None) -> None:
        target = self.path(name)
        shutil.rmtree(target, ignore_errors=True)  # an unfinished earlier build
        kind, uv = self._which_installer()
        python = str(self.python(name))
        listed = target / "bytenite-requirements.txt"
        if requirements.file.name == "requirements.txt":
            source = str(requirements.file)
        else:
            source = str(listed)
        base = getattr(sys, "_base_executable", None) or sys.executable
        if uv:
            steps = [[uv, "venv", "--python", base, str(target)],
                     [uv, "pip", "install", "--python", python, "-r", source]]
        else:
            steps = [[sys.executable, "-m", "venv", str(target)],
                     [python, "-m", "pip", "install", "--disable-pip-version-check",
                      "--no-input", "--progress-bar", "off", "-r", source]]
        started = time.monotonic()
        try:
            for i, command in enumerate(steps):
                if i == 1:
                    listed.write_text("\n".join(requirements.lines) + "\n", encoding="utf-8")
                _run(command, requirements.file.parent, on_line, cancel, deadline)
            info = {
                "name": name,
                "python": ".".join(map(str, sys.version_info[:3])),
                "requirements": list(requirements.lines),
                "source": str(requirements.file),
                "installer": kind,
                "createdAt": _now(),
                "buildSeconds": round(time.monotonic() - started, 3),
            }
            (target / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    # -- use ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def use(self, names: set[str]) -> Iterator[None]:
        """Mark ``names`` in use (a running job), so `remove` refuses them meanwhile."""
        with self._lock:
            for name in names:
                self._users[name] = self._users.get(name, 0) + 1
        for name in names:
            with contextlib.suppress(OSError):
                (self.path(name) / _LAST_USED).touch()
        try:
            yield
        finally:
            with self._lock:
                for name in names:
                    self._users[name] -= 1
                    if not self._users[name]:
                        del self._users[name]

    def in_use(self, name: str) -> bool:
        with self._lock:
            return name in self._users

    # -- listing and removing ----------------------------------------------------------------

    def names(self) -> list[str]:
        """Every environment folder (complete or not), by name; other folders in ``root``
        are not ours to list or remove."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _NAME.match(p.name))

    def describe(self, name: str) -> dict[str, Any]:
        """``{"name", "python", "requirements", "source", "installer", "createdAt",
        "lastUsedAt", "size", "complete", "inUse"}`` (``size`` in bytes)."""
        path = self.path(name)
        info: dict[str, Any] = {"name": name, "python": "", "requirements": [], "source": "",
                                "installer": "", "createdAt": None, "lastUsedAt": None}
        with contextlib.suppress(OSError, ValueError):
            stored = json.loads((path / MARKER).read_text(encoding="utf-8"))
            if isinstance(stored, dict):
                info.update({k: stored[k] for k in info if k in stored})
        with contextlib.suppress(OSError):
            used = (path / _LAST_USED).stat().st_mtime
            info["lastUsedAt"] = _dt.datetime.fromtimestamp(used, _dt.timezone.utc).isoformat(
                timespec="seconds").replace("+00:00", "Z")
        info["size"] = _size(path)
        info["complete"] = self.ready(name)
        info["inUse"] = self.in_use(name)
        return info

    def remove(self, name: str) -> int:
        """Delete environment ``name``; returns the bytes freed. Raises `EnvironmentInUse`
        while a job uses it or it is being built, `KeyError` when there is none."""
        path = self.path(name)
        if not _NAME.match(name) or not path.is_dir():
            raise KeyError(name)
        if self.in_use(name):
            raise EnvironmentInUse(f"environment {name} is in use by a running job")
        folder = self.root / _LOCKS
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise EnvironmentInUse(f"environment {name} is being built") from None
            size = _size(path)
            shutil.rmtree(path, ignore_errors=True)
            return size
        finally:
            os.close(fd)


def _check_stop(cancel: threading.Event | None, deadline: float | None) -> None:
    if cancel is not None and cancel.is_set():
        raise BuildCancelled("the job was aborted")
    if deadline is not None and time.monotonic() > deadline:
        raise BuildCancelled("the job's time ran out")


def _installer_env() -> dict[str, str]:
    """The server's environment for the installer (its proxies, certificates and index
    settings), without ByteNite Local's own variables or the server's virtualenv."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BYTENITE") and k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    env.update(NO_COLOR="1", UV_NO_PROGRESS="1", PIP_NO_INPUT="1", PYTHONUNBUFFERED="1")
    return env


def _run(command: list[str], cwd: Path, on_line: Callable[[str], None],
         cancel: threading.Event | None, deadline: float | None) -> None:
    """Run one installer step, its output lines to ``on_line``; `BuildError` with the last
    lines when it fails, `BuildCancelled` (the step killed) on cancel or deadline."""
    _check_stop(cancel, deadline)
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=_installer_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        raise BuildError(f"cannot run {Path(command[0]).name}: {exc.strerror or exc}") from None
    last: deque[str] = deque(maxlen=ERROR_LINES)
    assert proc.stdout is not None

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.strip() and not line.startswith(_NOT_SHOWN):
                on_line(_ANSI.sub("", line))
                cleaned = _clean(line)
                if cleaned:
                    last.append(cleaned)

    reader = threading.Thread(target=read, name="bytenite-env-build", daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            try:
                _check_stop(cancel, deadline)
            except BuildCancelled:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, 9)
                raise
            time.sleep(_POLL)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
        proc.wait()
        reader.join(5)
        proc.stdout.close()
    if proc.returncode != 0:
        tool = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command[:3]))
        tail = "; ".join(last) or "no output"
        raise BuildError(f"{tool} exited with {proc.returncode}: {tail}")
