"""The pieces behind app environments and device requirements, without a server: which
requirements file an engine has, what names an environment, how manifests' requirements are
read and checked, how worker slots and GPUs are shared, and how a failed process's output is
read for the ``errorMessage``."""

from __future__ import annotations

import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from bytenite_nb.server.execution.environments import (
    Environments,
    RequirementsError,
    find_requirements,
)
from bytenite_nb.server.execution.executors.base import Grant, WorkerSlots
from bytenite_nb.server.execution.registry import Registry
from bytenite_nb.server.execution.resources import (
    DeviceRequirements,
    Gpu,
    Machine,
    detect_gpus,
    parse_size,
)
from bytenite_nb.server.execution.runtime import Diagnosis, Runtime
from tests.kit.apps import write_app, write_folder

GB = 1024**3


# -- which requirements ---------------------------------------------------------------------


def test_next_to_the_entrypoint_wins_over_the_folder_root(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "a", "", files={
        "app/requirements.txt": "# pinned\nRequests == 2.31 \n\ninflection  # for names\n",
        "requirements.txt": "something-else\n"})
    found = find_requirements(folder, "main.py")
    assert found is not None and found.label(folder) == "app/requirements.txt"
    assert found.lines == ("Requests == 2.31", "inflection")  # comments and blanks dropped
    (folder / "app" / "requirements.txt").unlink()
    root = find_requirements(folder, "main.py")
    assert root is not None and root.label(folder) == "requirements.txt"


def test_pyproject_dependencies_count_and_requirements_txt_beats_them(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "a", "", files={
        "app/pyproject.toml": '[project]\nname = "a"\ndependencies = ["termcolor>=2", '
                              '"inflection"]\n'})
    found = find_requirements(folder, "main.py")
    assert found is not None and found.lines == ("inflection", "termcolor>=2")
    (folder / "app" / "requirements.txt").write_text("six\n")
    assert find_requirements(folder, "main.py").lines == ("six",)  # type: ignore[union-attr]


def test_a_pyproject_without_dependencies_is_not_a_requirements_file(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "a", "", files={
        "app/pyproject.toml": "[tool.ruff]\nline-length = 100\n",
        "requirements.txt": "inflection\n"})
    assert find_requirements(folder, "main.py").label(folder) == "requirements.txt"  # type: ignore[union-attr]
    assert find_requirements(write_app(tmp_path, "b", ""), "main.py") is None


@pytest.mark.skipif(sys.version_info < (3, 11), reason="tomllib")
def test_a_broken_pyproject_is_named(tmp_path: Path) -> None:
    folder = write_app(tmp_path, "a", "", files={"pyproject.toml": "[project\n"})
    with pytest.raises(RequirementsError, match=r"pyproject\.toml is not valid TOML"):
        find_requirements(folder, "main.py")


def test_environment_names_follow_the_requirement_set_and_python(tmp_path: Path) -> None:
    envs = Environments(tmp_path / "envs")
    a = write_app(tmp_path, "a", "", files={"app/requirements.txt": "b\na\n"})
    b = write_app(tmp_path, "b", "", files={"requirements.txt": "a  # same set\nb\n"})
    c = write_app(tmp_path, "c", "", files={"requirements.txt": "a\nb==1\n"})
    name_a, name_b, name_c = (envs.name_for(find_requirements(f, "main.py"))  # type: ignore[arg-type]
                              for f in (a, b, c))
    assert name_a == name_b != name_c
    assert name_a.startswith(f"py{sys.version_info.major}.{sys.version_info.minor}-")
    assert not envs.ready(name_a) and envs.names() == []


# -- device requirements --------------------------------------------------------------------


def test_device_requirements_are_read_as_bytenite_writes_them() -> None:
    read = DeviceRequirements.from_manifest
    assert read({}) == DeviceRequirements()
    assert read({"device_requirements": {"min_cpu": 2, "min_memory": 4}}) == \
        DeviceRequirements(2, 4, ())
    assert read({"deviceRequirements": {"minCpu": "16", "minMemory": 32.5}}).min_memory == 32.5
    gpu = read({"device_requirements": {"min_cpu": 2, "gpu": ["NVIDIA A100-SXM4-40GB"]}})
    assert gpu.gpu == ("NVIDIA A100-SXM4-40GB",) and gpu.slots == 2
    assert read({"device_requirements": {"min_cpu": 1.5}}).slots == 2
    assert read({"device_requirements": {"min_cpu": 0}}).slots == 1
    with pytest.raises(ValueError, match=r"device_requirements\.min_cpu must be a number"):
        read({"device_requirements": {"min_cpu": "lots"}})
    with pytest.raises(ValueError, match=r"device_requirements\.gpu must be a list"):
        read({"device_requirements": {"gpu": [3]}})


def test_manifests_as_bytenite_s_public_apps_write_them(tmp_path: Path) -> None:
    # Capitalised keys, a list of GPU models, a private-image flag beside the container.
    write_folder(tmp_path, "flux-like", "", {
        "Name": "flux-like", "Version": "1.0", "Platform": "docker", "Entrypoint": "main.py",
        "platform_config": {"container": "someone/flux-generator", "private_image": False},
        "device_requirements": {"min_cpu": 2, "min_memory": 2,
                                "gpu": ["NVIDIA A100-SXM4-40GB", "NVIDIA GeForce RTX 4090"]}})
    registry = Registry(bundled=False, dirs=[tmp_path])
    assert registry.problems == []
    engine = registry.resolve("flux-like", "app")
    assert engine.container == "someone/flux-generator" and engine.program is None
    assert engine.device_requirements == DeviceRequirements(
        2, 2, ("NVIDIA A100-SXM4-40GB", "NVIDIA GeForce RTX 4090"))


def test_a_bad_device_requirement_is_a_load_problem(tmp_path: Path) -> None:
    write_app(tmp_path, "bad", "", manifest={"device_requirements": {"min_memory": -1}})
    registry = Registry(bundled=False, dirs=[tmp_path])
    assert [p.reason for p in registry.problems] == [
        "device_requirements.min_memory must be 0 or more, got -1"]


def test_shortfalls_name_the_requirement_and_what_the_machine_has() -> None:
    machine = Machine(cpus=2, memory=8 * GB)
    needs = DeviceRequirements(min_cpu=16, min_memory=32, gpu=("NVIDIA A100",))
    assert needs.shortfalls(machine) == [
        "min_cpu 16 (this machine has 2 CPUs)", "min_memory 32 GB (this machine has 8 GiB)",
        "a GPU (NVIDIA A100; this machine has no NVIDIA GPU: nvidia-smi -L lists none)"]
    assert DeviceRequirements(min_memory=2).shortfalls(machine, memory_limit=GB) == [
        "min_memory 2 GB (--task-memory-limit caps each task at 1 GiB)"]
    gpu_box = Machine(cpus=8, memory=64 * GB, gpus=(Gpu("0", "NVIDIA GeForce RTX 4090"),))
    assert needs.shortfalls(gpu_box) == ["min_cpu 16 (this machine has 8 CPUs)"]
    assert needs.other_models(gpu_box) == "NVIDIA GeForce RTX 4090"
    assert DeviceRequirements(gpu=("nvidia geforce rtx 4090",)).other_models(gpu_box) is None


def test_gpus_are_read_from_nvidia_smi(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-1234)'\n"
                    "echo 'GPU 1: Tesla T4 (UUID: GPU-5678)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert detect_gpus(str(fake)) == (Gpu("0", "NVIDIA A100-SXM4-40GB", "GPU-1234"),
                                      Gpu("1", "Tesla T4", "GPU-5678"))
    failing = tmp_path / "broken"
    failing.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    assert detect_gpus(str(failing)) == ()


def test_sizes() -> None:
    assert parse_size("512M") == 512 * 1024**2
    assert parse_size("2g") == 2 * GB and parse_size("1.5GiB") == int(1.5 * GB)
    assert parse_size("4096") == 4096 and parse_size(10) == 10
    with pytest.raises(ValueError, match="give bytes or a number with K, M, G or T"):
        parse_size("lots")
    with pytest.raises(ValueError, match="more than 0 bytes"):
        parse_size("0")


# -- worker slots ---------------------------------------------------------------------------


def test_a_process_takes_its_min_cpu_slots_first_come_first_served() -> None:
    slots = WorkerSlots(4)
    first = slots.take(None, None, cpus=3)
    assert isinstance(first, Grant) and first.cpus == 3
    order: list[str] = []

    def wait(name: str, cpus: int) -> None:
        grant = slots.take(None, None, cpus=cpus)
        assert isinstance(grant, Grant)
        order.append(name)

    big = threading.Thread(target=wait, args=("big", 4))
    big.start()
    time.sleep(0.2)  # (only ordering: "big" asked first)
    small = threading.Thread(target=wait, args=("small", 1))
    small.start()
    time.sleep(0.2)
    assert order == []  # one slot is free, but "big" came first and needs four
    slots.give_back(first)
    big.join(5)
    assert order == ["big"]
    assert slots.take(None, time.monotonic() + 0.2, cpus=1) == "deadline"
    cancel = threading.Event()
    cancel.set()
    assert slots.take(cancel, None) == "cancelled"
    slots.give_back(Grant(4))
    small.join(5)
    assert order == ["big", "small"]


def test_gpus_are_handed_out_one_per_process() -> None:
    slots = WorkerSlots(8, gpus=["0", "1"])
    a = slots.take(None, None, gpus=1)
    b = slots.take(None, None, gpus=1)
    assert isinstance(a, Grant) and isinstance(b, Grant)
    assert {a.gpus, b.gpus} == {("0",), ("1",)}
    assert a.environment({"X": "1"}) == {"X": "1", "CUDA_VISIBLE_DEVICES": a.gpus[0]}
    assert slots.take(None, time.monotonic() + 0.2, gpus=1) == "deadline"  # both taken
    assert isinstance(slots.take(None, None), Grant)  # CPU-only work still runs
    slots.give_back(a)
    assert slots.take(None, None, gpus=1) == Grant(1, a.gpus)
    assert WorkerSlots(2).take(None, None, cpus=9) == Grant(2)  # never more than there are


# -- reading a failed process's output ------------------------------------------------------


def _diagnose(tmp_path: Path, lines: list[str], *, exit_code: int = 1,
              runtime: Runtime | None = None, envs: bool = True,
              limit: int | None = None) -> str | None:
    registry = Registry(bundled=False, dirs=[])
    engine = registry.add_folder(write_app(tmp_path, f"a{len(list(tmp_path.iterdir()))}", ""))
    diagnosis = Diagnosis(engine, runtime, envs_enabled=envs, memory_limit=limit)
    for line in lines:
        diagnosis.feed(line)
    return diagnosis.describe(exit_code)


def test_a_missing_module_is_named_whatever_line_comes_last(tmp_path: Path) -> None:
    lines = ["Traceback (most recent call last):", '  File "main.py", line 1',
             "ModuleNotFoundError: No module named 'torch.nn'", "╰──────────────────╯"]
    assert _diagnose(tmp_path, lines) == (
        "failed with exit code 1: module 'torch.nn' is not installed (ModuleNotFoundError: No "
        "module named 'torch.nn'): list the package that provides 'torch' in "
        "app/requirements.txt: ByteNite Local then builds an environment for the app")
    in_env = Runtime(python="/e/bin/python", environment="py3.11-x",
                     requirements="app/requirements.txt")
    assert _diagnose(tmp_path, lines, runtime=in_env).endswith(
        "the environment built from app/requirements.txt does not have it: add the package "
        "that provides 'torch' to app/requirements.txt")
    assert "(--no-app-envs)" in _diagnose(tmp_path, lines, envs=False)  # type: ignore[operator]


def test_commands_node_modules_and_memory(tmp_path: Path) -> None:
    assert _diagnose(tmp_path, ["main.sh: line 3: jq: command not found"], exit_code=127) == (
        "failed with exit code 127: the command 'jq' is not installed here (main.sh: line 3: "
        "jq: command not found): install it on the machine that runs ByteNite Local")
    assert "node cannot find module 'lodash'" in _diagnose(  # type: ignore[operator]
        tmp_path, ["node:internal/modules/cjs/loader:1080", "Error: Cannot find module "
                   "'lodash'", "Node.js v18.19.0"])
    assert _diagnose(tmp_path, ["MemoryError"], limit=64 * 1024**2) == (
        "exceeded its memory limit of 64 MiB (--task-memory-limit) and failed with exit code "
        "1: MemoryError")
    assert _diagnose(tmp_path, ["MemoryError"]) == (
        "ran out of memory and failed with exit code 1: MemoryError")
    assert _diagnose(tmp_path, [], exit_code=-9, limit=GB) == (
        "was killed by signal 9: it may have exceeded its memory limit of 1 GiB "
        "(--task-memory-limit)")
    assert _diagnose(tmp_path, ["ValueError: bad input"]) is None
