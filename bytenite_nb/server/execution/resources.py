"""What an engine's manifest asks of the machine (``device_requirements``) and what this
machine has: CPUs, memory and NVIDIA GPUs.

ByteNite picks a machine that meets an engine's ``device_requirements``; ByteNite Local has
one machine, so it turns them into slots and checks (see ``docs/local-server.md``):

* ``min_cpu``: the worker slots each of the engine's processes takes;
* ``min_memory`` (GB) and ``min_cpu`` beyond this machine, or ``min_memory`` beyond the
  ``--task-memory-limit``: the job fails when it runs, naming the requirement and what the
  machine has (unless ``--ignore-requirements``: a warning then);
* ``gpu`` (ByteNite: a list of GPU models): each process takes one of the machine's GPUs
  (``nvidia-smi -L``) and sees only it (``CUDA_VISIBLE_DEVICES``); with none, the job fails.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DeviceRequirements",
    "Gpu",
    "Machine",
    "format_bytes",
    "manifest_value",
    "parse_size",
    "this_machine",
]

GB = 1024**3
_GPU_LINE = re.compile(r"^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Gpu:
    """One NVIDIA GPU as ``nvidia-smi -L`` lists it."""

    index: str
    name: str
    uuid: str = ""


@dataclass(frozen=True)
class Machine:
    """What this machine has to run tasks on."""

    cpus: int
    memory: int  # bytes
    gpus: tuple[Gpu, ...] = ()

    def describe_memory(self) -> str:
        return format_bytes(self.memory)


def _cpus() -> int:
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _memory() -> int:
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 0


def detect_gpus(nvidia_smi: str | None = None) -> tuple[Gpu, ...]:
    """The NVIDIA GPUs ``nvidia-smi -L`` lists (none when it is missing or fails)."""
    program = nvidia_smi or shutil.which("nvidia-smi")
    if not program:
        return ()
    try:
        out = subprocess.run([program, "-L"], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    if out.returncode != 0:
        return ()
    gpus = []
    for line in out.stdout.splitlines():
        match = _GPU_LINE.match(line.strip())
        if match:
            gpus.append(Gpu(match.group(1), match.group(2), match.group(3) or ""))
    return tuple(gpus)


@functools.lru_cache(maxsize=1)
def this_machine() -> Machine:
    """This machine (detected once per process: ``nvidia-smi`` takes a while)."""
    return Machine(cpus=_cpus(), memory=_memory(), gpus=detect_gpus())


def format_bytes(size: float) -> str:
    """``1.5 GiB``, ``512 MiB``, ``800 B``."""
    for unit, factor in (("TiB", 1024**4), ("GiB", GB), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{int(size)} B"


def parse_size(text: str | int) -> int:
    """``512M``, ``2G``, ``1.5GiB``, ``1048576`` → bytes (binary units); ``ValueError`` naming
    the accepted forms otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _SIZE.match(str(text))
        if not match:
            raise ValueError(f"{text!r} is not a size: give bytes or a number with K, M, G or "
                             "T (binary units), e.g. 512M or 2G")
        number, unit = float(match.group(1)), match.group(2).lower()
        value = int(number * 1024 ** " kmgt".index(unit or " "))
    if value <= 0:
        raise ValueError(f"{text!r}: a size must be more than 0 bytes")
    return value


def manifest_value(mapping: Any, *names: str) -> Any:
    """The value of the first of ``names`` found in ``mapping`` (a manifest, or an object in
    one), keys compared lower-cased and without underscores so that ``device_requirements``,
    ``deviceRequirements`` and ``Device_Requirements`` are one key (``names`` are given that
    way: ``"devicerequirements"``); None when absent or when ``mapping`` is not an object."""
    if not isinstance(mapping, Mapping):
        return None
    keys = {str(k).lower().replace("_", ""): v for k, v in mapping.items()}
    for name in names:
        if name in keys:
            return keys[name]
    return None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"device_requirements.{what} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and value.strip():
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"device_requirements.{what} must be a number, got "
                             f"{value!r}") from None
    else:
        raise ValueError(f"device_requirements.{what} must be a number, got {value!r}")
    if number < 0:
        raise ValueError(f"device_requirements.{what} must be 0 or more, got {value!r}")
    return number


@dataclass(frozen=True)
class DeviceRequirements:
    """A manifest's ``device_requirements``: ``min_cpu`` (CPUs), ``min_memory`` (GB) and
    ``gpu`` (the GPU models it runs on: any of them; empty = no GPU)."""

    min_cpu: float = 0
    min_memory: float = 0
    gpu: tuple[str, ...] = ()

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> DeviceRequirements:
        """Read them from a manifest (keys in any case, ``minCpu`` too); ``ValueError``
        naming the field when one is not what ByteNite takes."""
        raw = manifest_value(manifest, "devicerequirements")
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ValueError("device_requirements must be an object such as "
                             '{"min_cpu": 2, "min_memory": 4}')
        cpu = manifest_value(raw, "mincpu")
        min_cpu = _number(cpu, "min_cpu") if cpu is not None else 0
        memory = manifest_value(raw, "minmemory")
        min_memory = _number(memory, "min_memory") if memory is not None else 0
        gpu = manifest_value(raw, "gpu")
        if gpu in (None, False, 0, "", []):
            models: tuple[str, ...] = ()
        elif gpu is True or (isinstance(gpu, int) and not isinstance(gpu, bool) and gpu > 0):
            models = ("any",)
        elif isinstance(gpu, str):
            models = (gpu,)
        elif isinstance(gpu, list) and all(isinstance(g, str) and g.strip() for g in gpu):
            models = tuple(g.strip() for g in gpu)
        else:
            raise ValueError("device_requirements.gpu must be a list of GPU models such as "
                             f'["NVIDIA A100-SXM4-40GB"], got {gpu!r}')
        return cls(min_cpu=min_cpu, min_memory=min_memory, gpu=models)

    @property
    def slots(self) -> int:
        """Worker slots each process takes: ``min_cpu`` rounded up, at least 1."""
        return max(1, int(-(-self.min_cpu // 1)))

    def shortfalls(self, machine: Machine, memory_limit: int | None = None) -> list[str]:
        """What this machine (with that ``--task-memory-limit``) lacks, one phrase each."""
        out = []
        if self.min_cpu > machine.cpus:
            out.append(f"min_cpu {self.min_cpu:g} (this machine has {machine.cpus} "
                       f"CPU{'s' if machine.cpus != 1 else ''})")
        needed = self.min_memory * GB
        if machine.memory and needed > machine.memory:
            out.append(f"min_memory {self.min_memory:g} GB (this machine has "
                       f"{format_bytes(machine.memory)})")
        elif memory_limit and needed > memory_limit:
            out.append(f"min_memory {self.min_memory:g} GB (--task-memory-limit caps each "
                       f"task at {format_bytes(memory_limit)})")
        if self.gpu and not machine.gpus:
            out.append(f"a GPU ({', '.join(self.gpu)}; this machine has no NVIDIA GPU: "
                       "nvidia-smi -L lists none)")
        return out

    def other_models(self, machine: Machine) -> str | None:
        """When GPUs are asked for by model and none of this machine's is one of them, what
        the machine has instead (it runs on them anyway)."""
        if not self.gpu or not machine.gpus or "any" in self.gpu:
            return None
        wanted = {_model(g) for g in self.gpu}
        if any(_model(g.name) in wanted for g in machine.gpus):
            return None
        return ", ".join(sorted({g.name for g in machine.gpus}))


def _model(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())
