"""The fork server ("zygote") that starts every ByteNite Local task in a fresh process.

Run as a script by
:class:`bytenite_nb.server.execution.executors.forkserver.ForkServerExecutor`, never imported by
the server (it must stay free of the server's threads, so it is a separate, single-threaded
interpreter started with ``subprocess``). It pre-imports common modules once, then for each
request forks a child that becomes the task: its own process group, the contract environment,
the app's cwd, ``sys.argv``/``sys.path[0]`` as ``python main.py`` would set them, fds 1/2 on
the pipes the server passed along, and the entrypoint run with ``runpy.run_path`` as
``__main__`` (compiled once in the zygote, like a cached ``.pyc``). Forking a warm
interpreter costs about a millisecond; starting one costs tens.

Start-up: the zygote imports the modules it was asked to preload, writes one line
``preload-failed {"module", "error"}`` on stdout for each that failed, then ``ready``.

Protocol, over Unix stream sockets, one persistent connection per worker slot of the server
(so a task costs no connect/accept), carrying one task at a time; JSON lines, every message
tagged with the task's ``id`` (a late message about an earlier task is simply skipped):

* server → zygote: ``{"id", "script", "argv", "cwd", "path0", "env", "unset"}`` and maybe
  ``"imports"`` (modules to import in the zygote first, see :func:`import_for_tasks`),
  ``"exec"`` (a program to run instead of the script, e.g. ``["/usr/bin/node", "main.js"]``:
  the task execs it once its fds, cwd and environment are set), ``"rlimit_as"`` (bytes of
  address space the task may use) and ``"readonly"`` (folders the task may not write, see
  :func:`readonly_folders`), with two fds
  attached (``SCM_RIGHTS``): the write ends of the task's stdout and stderr pipes. ``env``
  and ``unset`` are the differences between the task's environment and the zygote's own
  (which the server chose when starting it), so the forty-odd variables every task shares
  are not encoded, sent, decoded and re-set for every task;
* server → zygote: ``{"kill": id}``: kill that task's whole process group (it still gets a
  status report). Closing the connection kills its running task too;
* zygote → server: ``{"id", "note": text}`` before forking when something the request asked
  for could not be done (the server shows it in the task's log); ``{"id", "pid"}`` once
  forked (so the server can kill the task's process group itself, even if the zygote dies),
  then ``{"id", "exit": code}`` (or ``"signal": n``,
  or ``"error": text`` if it could not start) once the task is reaped;
* task → server, on the same connection: ``{"id", "exit": code}`` just before the task exits
  normally (the first exit report to arrive is the outcome; a task killed by a signal only
  gets the zygote's). When the task's main process ends, whatever it started is killed too,
  as a container's processes die with it.

A task's main process (its "leader") is a child subreaper (``PR_SET_CHILD_SUBREAPER``), and
so is the zygote: a process the task started stays among the leader's descendants even if it
starts its own session or its parent exits (a daemon's double fork), where a kill of the
task's process group would miss it. Killing a task (`kill_tree`) stops the leader and every
descendant before killing them, so none can fork away meanwhile; a leader that ends kills
whatever it started; and a process re-parented to the zygote because its task's leader died
some other way (a signal, ``os._exit``, ``exec``) is killed when the zygote finds it.

The zygote exits (killing every task's process group) when its stdin reaches EOF, i.e. when
the server closed it or died.
"""

from __future__ import annotations

import sys

# What ``python main.py`` has imported before its first line runs (the same interpreter
# start-up as this script's). Everything the zygote imports beyond these is an extra that a
# task's own module of the same name must still win against (see _shadowed).
_STARTUP_MODULES = frozenset(sys.modules)

import atexit  # noqa: E402
import builtins  # noqa: E402
import contextlib  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import importlib.machinery  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

# Nothing is preloaded by default: every module a zygote holds makes each fork and each
# task's exit slower (its pages are copied and torn down every time), and a trivial task pays
# that for modules it never uses. Instead each request names the standard-library modules the
# app's entrypoint imports (see entry_imports), and the zygote imports those before its first
# fork for that app; heavier or third-party modules are preloaded only when asked for.
DEFAULT_PRELOAD: tuple[str, ...] = ()
_MAX_REQUEST = 16 * 1024 * 1024
_MAX_FD = max(os.sysconf("SC_OPEN_MAX"), 1024)  # close_range makes a large bound cheap


# -- a task's processes ---------------------------------------------------------------------

_PR_SET_CHILD_SUBREAPER = 36
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]
except (OSError, AttributeError):  # not Linux (no prctl): process groups only
    _prctl = None


def set_child_subreaper() -> bool:
    """Make this process a child subreaper: orphaned descendants are re-parented to it rather
    than to init, so they stay its descendants. Async-signal-safe enough for a
    ``preexec_fn`` (no import, no allocation beyond the call). False where unsupported."""
    if _prctl is None:
        return False
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _child_map() -> dict[int, list[int]]:
    """Every process's children, from ``/proc/<pid>/stat`` (``/proc/<pid>/task/*/children``
    needs a kernel option that containers and micro-VMs often lack)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return children
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
            ppid = int(data[data.rindex(b")") + 2:].split(None, 2)[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` in the process tree (children first)."""
    children = _child_map()
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def kill_tree(pid: int, *, leader: bool = True) -> None:
    """SIGKILL the process ``pid`` (with ``leader``), its process group and every descendant,
    wherever they moved (own session, own group).

    Each process is stopped (SIGSTOP) before the tree is read again, until a reading finds no
    new one: a stopped process cannot fork, and a child forked before its parent stopped is in
    the next reading (under its parent, or under the leader, a subreaper, if its parent has
    exited). Then all of them are killed at once. ``leader=False``: the caller is ``pid``
    (a task that ends) and kills what is below it only.
    """
    seen: set[int] = set()
    if leader:
        _signal(pid, signal.SIGSTOP)
    for _ in range(1000):  # bounded: a fork bomb gets no further than stopped
        new = [p for p in descendants(pid) if p not in seen]
        if not new:
            break
        for child in new:
            _signal(child, signal.SIGSTOP)
        seen.update(new)
    if leader:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _signal(pid, signal.SIGKILL)
    for child in seen:
        _signal(child, signal.SIGKILL)


def _end_descendants() -> None:
    """In a task's leader that is about to exit: kill whatever it started that still runs.

    ``waitpid`` says for free whether anything is left (reaping what has ended meanwhile), so
    a task that started nothing pays no walk of the process tree.
    """
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        return  # no child at all, hence no descendant: a subreaper adopts every orphan
    kill_tree(os.getpid(), leader=False)


def _exit_code(code: object) -> int:
    """``SystemExit.code`` → process exit status, as the interpreter maps it."""
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _exec_main(script: str, code: types.CodeType) -> None:
    """Run ``code`` as ``__main__`` the way ``python script`` sets the module up."""
    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=script, __cached__=None, __package__=None, __spec__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", script),
        __builtins__=builtins,
    )
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


_code_cache: dict[str, tuple[int, int, types.CodeType]] = {}


def _compile(script: str) -> types.CodeType | None:
    """The script's code object, compiled once in the zygote and inherited by every fork."""
    try:
        st = os.stat(script)
        cached = _code_cache.get(script)
        if cached and cached[:2] == (st.st_mtime_ns, st.st_size):
            return cached[2]
        with open(script, "rb") as f:
            code = compile(f.read(), script, "exec", dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        return None
    _code_cache[script] = (st.st_mtime_ns, st.st_size, code)
    return code


_CTL_FD = 3  # in a task: its end of the server connection, for the exit report


def _child_fds(out_fd: int, err_fd: int, conn_fd: int) -> None:
    """A task's fds: 0 reads /dev/null, 1 and 2 are its pipes, 3 is the connection (not
    inherited by its own subprocesses), and nothing else of the zygote's stays open.

    Raw fds and one ``close_range`` rather than closing the zygote's socket and selector
    objects: that ran enough Python to copy a hundred-odd pages per task, and those objects
    are never used, nor finalised, in the child (it leaves with ``os._exit``).
    """
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    if conn_fd != _CTL_FD:  # (whatever sat on fd 3 was the zygote's, or a copy made above)
        os.dup2(conn_fd, _CTL_FD, inheritable=False)
    os.closerange(_CTL_FD + 1, _MAX_FD)


def _print_exc() -> None:
    """The traceback of the exception being handled, on stderr, as ``python main.py`` prints
    it: starting at the app's own frame, without the zygote's (or runpy's) frames that ran
    it. (``traceback`` is imported only here: most tasks never need it.)"""
    import traceback

    exc = sys.exc_info()[1]
    if exc is None:
        return
    tb = exc.__traceback__
    runner_files = (__file__, "<frozen runpy>",  # (runpy is frozen since Python 3.11)
                    getattr(sys.modules.get("runpy"), "__file__", None))
    while tb is not None and tb.tb_frame.f_code.co_filename in runner_files:
        tb = tb.tb_next  # (none left: e.g. a SyntaxError, which python prints without one)
    traceback.print_exception(type(exc), exc, tb)


def import_for_tasks(names: list[str]) -> None:
    """Import ``names`` here, in the zygote, so that every task forked afterwards has them.

    A module that fails to import, or warns while importing (a ``DeprecationWarning`` the
    app's own log should show), is left to the task: whatever it added to ``sys.modules`` is
    taken out again, and the task imports it itself, with the same outcome as ``python
    main.py``.
    """
    imported = False
    for name in names:
        if not isinstance(name, str) or name in sys.modules:
            continue
        before = set(sys.modules)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                __import__(name)
                ok = not caught
            except Exception:
                ok = False
        if ok:
            imported = True
        else:
            for added in set(sys.modules) - before:
                del sys.modules[added]
    if imported:
        gc.freeze()  # (see main(): the new modules' objects stay shared with every task)


_folder_names: dict[str, tuple[int, frozenset[str]]] = {}


def _shadowed(path0: str) -> list[str]:
    """Modules loaded here that the task's own folder (its ``sys.path[0]``) provides too.

    ``python main.py`` would import the app's own ``calendar.py`` (say) rather than the
    standard library's; a forked task already holding the zygote's ``calendar`` would not,
    so these are dropped from its ``sys.modules`` first. The folder's listing is cached on
    its modification time.
    """
    try:
        mtime = os.stat(path0).st_mtime_ns
    except OSError:
        return []
    cached = _folder_names.get(path0)
    if cached is None or cached[0] != mtime:
        try:
            names = frozenset(name.partition(".")[0] for name in os.listdir(path0))
        except OSError:
            names = frozenset()
        cached = _folder_names[path0] = (mtime, names)
    return [name for name in cached[1] if name in sys.modules and name not in _STARTUP_MODULES]


def _forget_modules(names: list[str]) -> None:
    """Drop ``names`` and their submodules from ``sys.modules`` (in a task, see _shadowed)."""
    for key in [k for k in sys.modules if k.partition(".")[0] in names]:
        del sys.modules[key]


def _run_child(request: dict, compiled: types.CodeType | None = None,
               shadowed: list[str] | None = None) -> int:
    """Become the task (in the forked child, fds set up); returns the exit status."""
    os.chdir(request["cwd"])
    # Only the differences from the zygote's own environment (see the protocol): every
    # putenv/unsetenv after a fork costs page copies.
    for key in request.get("unset", ()):
        os.environ.pop(key, None)
    for key, value in request.get("env", {}).items():
        os.environ[key] = value
    if request.get("rlimit_as"):
        _limit_memory(int(request["rlimit_as"]))
    if request.get("exec"):
        return _exec(request["exec"])
    sys.argv = list(request["argv"])
    sys.path[0] = request["path0"]
    if shadowed:
        _forget_modules(shadowed)
    # sys.stdout/sys.stderr are the zygote's own (line-buffered, UTF-8, see main()), now
    # writing to the task's pipes through fds 1 and 2; fd 0 reads /dev/null.
    code = 0
    try:
        if compiled is None:  # could not be read/compiled up front: let runpy report it
            import runpy

            runpy.run_path(request["script"], run_name="__main__")
        else:
            _exec_main(request["script"], compiled)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        _print_exc()
        code = 1
    # What interpreter shutdown does: wait for non-daemon threads, run atexit handlers.
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            main = threading.main_thread()
            for thread in threading.enumerate():
                if thread is not main and not thread.daemon:
                    thread.join()
        atexit._run_exitfuncs()
    except BaseException:
        _print_exc()
        code = code or 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code


def _limit_memory(limit: int) -> None:
    """Cap the task's address space at ``limit`` bytes (``--task-memory-limit``): past it an
    allocation fails (``MemoryError`` in Python) instead of the machine running out."""
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _exec(argv: list[str]) -> int:
    """Become ``argv`` (an entrypoint that is not Python); returns only if that fails."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        print(f"cannot run {argv[0]}: {exc.strerror or exc}", file=sys.stderr)
    return 127


# -- read-only folders ------------------------------------------------------------------------
#
# SHARED_CACHE_DIR is read-only for tasks, for root too, which file modes cannot stop: the
# zygote moves itself into a mount namespace of its own (with a user namespace when it is not
# root, which lets an unprivileged process do so) and bind-mounts each such folder read-only
# onto itself there. Every task it forks afterwards sees the folder (and what the server adds
# to it later) but cannot write to it; the server, outside that namespace, still can.

_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND = 32, 1024, 2048, 4096
_MS_REC, _MS_SLAVE, _MS_RELATIME = 16384, 1 << 19, 1 << 21
_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
# statvfs flags of the mount a folder is on, which a bind mount must keep (a user namespace
# may not drop them).
_KEEP_FLAGS = tuple((getattr(os, name, 0), flag) for name, flag in (
    ("ST_NOSUID", _MS_NOSUID), ("ST_NODEV", _MS_NODEV), ("ST_NOEXEC", _MS_NOEXEC),
    ("ST_NOATIME", _MS_NOATIME), ("ST_NODIRATIME", _MS_NODIRATIME),
    ("ST_RELATIME", _MS_RELATIME)))
_readonly: dict[str, str] = {}  # folder -> "" once read-only, else why it could not be
_namespace: list[str] = []  # [""] once in our own mount namespace, [reason] if that failed


_libc_cache: list[ctypes.CDLL] = []


def _libc():  # type: ignore[no-untyped-def]
    """libc with ``mount`` and ``unshare``, loaded once (`prepare_readonly` loads it before a
    fork, so that a ``preexec_fn`` need not call ``dlopen``)."""
    if not _libc_cache:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_ulong, ctypes.c_void_p)
        libc.unshare.argtypes = (ctypes.c_int,)
        _libc_cache.append(libc)
    return _libc_cache[0]


def prepare_readonly() -> None:
    """Load what `readonly_folders` needs, in a process that will call it from the child of
    a fork (a ``subprocess`` ``preexec_fn``)."""
    with contextlib.suppress(OSError, AttributeError):
        _libc()


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enter_namespace() -> None:
    """Move the zygote into a mount namespace of its own, whose mounts do not propagate
    back to the machine's."""
    libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    if uid == 0:
        _check(libc.unshare(_CLONE_NEWNS), "unshare")
    else:  # an unprivileged user namespace, mapping our own ids to themselves
        _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                           ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_SLAVE, None), "mount --make-rslave /")


def _bind_readonly(folder: str) -> None:
    libc = _libc()
    path = os.fsencode(folder)
    _check(libc.mount(path, path, None, _MS_BIND | _MS_REC, None), "bind mount")
    flags = os.statvfs(folder).f_flag
    keep = 0
    for st_flag, ms_flag in _KEEP_FLAGS:
        if flags & st_flag:
            keep |= ms_flag
    _check(libc.mount(None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | keep, None),
           "read-only remount")


def readonly_folders(folders: list[str]) -> str | None:
    """Make ``folders`` read-only for the tasks forked from now on; None when done (now or
    earlier), else why not (said once per folder)."""
    problems = []
    for folder in folders:
        if not isinstance(folder, str) or folder in _readonly:
            continue
        try:
            if not _namespace:
                try:
                    _enter_namespace()
                    _namespace.append("")
                except (OSError, AttributeError) as exc:
                    _namespace.append(f"no mount namespace ({exc})")
            if _namespace[0]:
                raise OSError(_namespace[0])
            _bind_readonly(folder)
            _readonly[folder] = ""
        except (OSError, AttributeError) as exc:
            _readonly[folder] = str(exc)
            problems.append(f"{folder} is writable for this task: it cannot be made "
                            f"read-only here ({exc})")
    return "; ".join(problems) or None


class _Conn:
    """One persistent server connection (a worker slot): requests being read, its tasks."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = b""
        self.fds: list[int] = []  # received with requests, not yet handed to a task
        self.tasks: dict[int, int] = {}  # task id -> pid, while running


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _kill_task(pid: int) -> None:
    """A running task, everything it started included (`kill_tree`)."""
    with contextlib.suppress(OSError):
        kill_tree(pid)


def _send(conn: _Conn, message: bytes) -> None:
    # (A closed socket object raises here instead of writing to a reused fd number.)
    with contextlib.suppress(OSError):
        conn.sock.sendall(message)


def _become_task(request: dict, compiled: types.CodeType | None, shadowed: list[str],
                 out_fd: int, err_fd: int, sock_fd: int) -> None:
    """In the forked child: become the task, run it, report its exit code and exit."""
    task_id = int(request["id"])
    code, ctl_fd = 1, -1
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        set_child_subreaper()  # (see the module docstring: a task's processes)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as python main.py
        _child_fds(out_fd, err_fd, sock_fd)
        ctl_fd = _CTL_FD
        code = _run_child(request, compiled, shadowed)
    finally:
        # The task reports its own exit code on the connection just before it exits:
        # the server learns the outcome together with the end of the output, without
        # waiting for the zygote to be woken by SIGCHLD, reap, and write.
        with contextlib.suppress(OSError):
            os.write(ctl_fd, b'{"id": %d, "exit": %d}\n' % (task_id, code))
        # The output pipes close now rather than at the exit: a process's fds close
        # only after its memory is torn down, and the server waits for their EOF
        # before it starts the slot's next task.
        for fd in (1, 2):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(BaseException):
            _end_descendants()
        os._exit(code)


class _Server:
    """The zygote's loop: accept connections, fork tasks, reap them; until stdin's EOF.

    poll() and a dict rather than a selector: every page the zygote touches between a fork
    and that task's exit is copied (the child shares it), and a selector's select() runs
    far more Python per wake-up than this.
    """

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        listener.setblocking(False)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(wake_w)
        # A handler (not SIG_DFL/SIG_IGN) so that SIGCHLD wakes the poll through wake_w.
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the server's
        self.poller = select.poll()
        self.targets: dict[int, _Conn | str] = {}
        self.by_pid: dict[int, tuple[_Conn, int]] = {}
        self.watch(listener.fileno(), "accept")
        self.watch(self.wake_r, "sigchld")
        self.watch(sys.stdin.fileno(), "stdin")

    def watch(self, fd: int, target: _Conn | str) -> None:
        self.poller.register(fd, select.POLLIN)
        self.targets[fd] = target

    def close_conn(self, conn: _Conn) -> None:
        if self.targets.pop(conn.fd, None) is not None:
            self.poller.unregister(conn.fd)
        conn.sock.close()
        for fd in conn.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        conn.fds = []
        for pid in conn.tasks.values():  # its server is gone: so are its tasks
            _kill_task(pid)
        conn.tasks = {}

    def start(self, conn: _Conn, request: dict, out_fd: int, err_fd: int) -> None:
        task_id = int(request["id"])
        note = readonly_folders(request.get("readonly") or [])
        if note:
            _send(conn, json.dumps({"id": task_id, "note": note}).encode() + b"\n")
        compiled, shadowed = None, []
        if not request.get("exec"):  # (a program that is not Python needs none of these)
            import_for_tasks(request.get("imports") or [])
            compiled = _compile(request["script"])
            shadowed = _shadowed(request["path0"])
        pid = os.fork()
        if pid == 0:  # the task
            _become_task(request, compiled, shadowed, out_fd, err_fd, conn.sock.fileno())
        # Set the group from the parent too, so it exists before the server learns the pid.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        conn.tasks[task_id] = pid
        self.by_pid[pid] = (conn, task_id)
        _send(conn, b'{"id": %d, "pid": %d}\n' % (task_id, pid))

    def handle(self, conn: _Conn, line: bytes) -> None:
        try:
            message = json.loads(line)
            if "kill" in message:
                pid = conn.tasks.get(int(message["kill"]))
                if pid is not None:
                    _kill_task(pid)
                return
            task_id = int(message["id"])
        except (ValueError, TypeError, KeyError) as exc:
            _send(conn, json.dumps({"error": f"bad request: {exc}"}).encode() + b"\n")
            self.close_conn(conn)
            return
        if len(conn.fds) < 2:
            _send(conn, json.dumps({"id": task_id, "error": "two fds (stdout, stderr) must "
                                    "come with the request"}).encode() + b"\n")
            self.close_conn(conn)
            return
        out_fd, err_fd = conn.fds.pop(0), conn.fds.pop(0)
        try:
            self.start(conn, message, out_fd, err_fd)
        except (OSError, KeyError, TypeError) as exc:
            _send(conn, json.dumps({"id": task_id,
                                    "error": f"fork failed: {exc}"}).encode() + b"\n")
        finally:
            os.close(out_fd)
            os.close(err_fd)

    def on_readable(self, conn: _Conn) -> None:
        try:
            data, fds, _flags, _addr = socket.recv_fds(conn.sock, 65536, 4)
        except OSError:
            data, fds = b"", []
        conn.fds.extend(fds)
        if not data:  # the server hung up: its running task is killed
            self.close_conn(conn)
            return
        conn.buf += data
        while b"\n" in conn.buf and conn.sock.fileno() != -1:
            line, conn.buf = conn.buf.split(b"\n", 1)
            self.handle(conn, line)
        if len(conn.buf) > _MAX_REQUEST:
            self.close_conn(conn)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                if not self.by_pid:  # children, but no task: orphans of a task that died
                    self.kill_strays()
                return
            _kill_group(pid)  # stragglers die with the task, as in a container
            owner = self.by_pid.pop(pid, None)
            if owner is None:
                continue
            conn, task_id = owner
            conn.tasks.pop(task_id, None)
            if os.WIFSIGNALED(status):
                report = b'{"id": %d, "signal": %d}\n' % (task_id, os.WTERMSIG(status))
            else:
                report = b'{"id": %d, "exit": %d}\n' % (task_id,
                                                        os.waitstatus_to_exitcode(status))
            _send(conn, report)

    def kill_strays(self) -> None:
        """Kill the children that are no task: the zygote is a subreaper, so what a task left
        when its leader ended without cleaning up (killed by a signal, ``os._exit``, an
        ``exec``) was re-parented here, and dies as the rest of its task did."""
        me = os.getpid()
        for pid in _child_map().get(me, ()):
            if pid not in self.by_pid:
                _kill_task(pid)

    def run(self) -> None:
        """Serve until the server closes our stdin; then kill every task still running."""
        while True:
            for fd, _events in self.poller.poll():
                tag = self.targets.get(fd)
                if tag is None:  # closed earlier in this round
                    continue
                if tag == "accept":
                    with contextlib.suppress(BlockingIOError, InterruptedError):
                        sock, _ = self.listener.accept()
                        sock.setblocking(True)
                        conn = _Conn(sock)
                        self.watch(conn.fd, conn)
                elif tag == "sigchld":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 4096):
                            pass
                    self.reap()
                elif tag == "stdin":
                    if not os.read(sys.stdin.fileno(), 4096):
                        for pid in list(self.by_pid):
                            _kill_task(pid)
                        self.by_pid.clear()
                        self.kill_strays()
                        return
                elif isinstance(tag, _Conn):
                    self.on_readable(tag)
            self.reap()  # a SIGCHLD may have raced with the wake-up pipe's drain


def serve(listener: socket.socket) -> None:
    """The zygote's loop: accept, fork, reap; until stdin reaches EOF."""
    _Server(listener).run()


def main() -> None:
    """Entry point: ``python zygote.py <listening-socket-fd> [comma-separated modules]``."""
    listener = socket.socket(fileno=int(sys.argv[1]))
    set_child_subreaper()  # (see the module docstring: a task's processes)
    # What tasks write in the data dir is the user's alone, whatever the server's process
    # umask is (a server on a thread of a notebook kernel keeps the kernel's).
    os.umask(0o077)
    # sys.path[0] is this file's folder, which must not shadow anything imported here (each
    # task sets its own); the zygote's cwd is an empty folder of its own.
    sys.path[0] = os.getcwd()
    import importlib

    preload = sys.argv[2].split(",") if len(sys.argv) > 2 else DEFAULT_PRELOAD
    for name in filter(None, preload):
        try:
            importlib.import_module(name)
        except Exception as exc:  # the tasks import it themselves (and fail as they would)
            # Before "ready", so the executor can tell the server's log once.
            sys.stdout.write("preload-failed " + json.dumps(
                {"module": name, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
    # Frozen objects are never visited by a child's collector, so the pages holding them
    # stay shared with the zygote instead of being copied at the child's first collection.
    gc.freeze()
    # What every forked task inherits: line-buffered output, so that each line reaches the
    # job's logs as it is written (python main.py with PYTHONUNBUFFERED=1 behaves the same).
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    sys.stdout.write("ready\n")  # the executor waits for this before sending work
    sys.stdout.flush()
    serve(listener)


if __name__ == "__main__":
    main()
