"""Device choice (``"auto"`` is the GPU when there is one, else the CPU) and a record of the machine."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu' or 'cuda'") from err
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: DreamSim runs on 'cpu' or 'cuda' (or 'auto')")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA GPU is available: use device='auto' or 'cpu'")
    return resolved


def result_kind(device: str) -> str:
    """``gpu`` or ``cpu``: how a result file measured on ``device`` is named."""
    return "gpu" if str(device).startswith("cuda") else "cpu"


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """torch's generators seeded with ``seed`` inside; the caller's (CPU and every CUDA device, which
    ``torch.manual_seed`` reseeds too) as they were after."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def _cpu_model() -> dict[str, Any]:
    """The CPU's name and whether it has bf16 units, from Linux's /proc/cpuinfo (nothing elsewhere):
    the same seed trains slightly different agents, at other speeds, on other CPU types."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines if ":" in line)}
    except OSError:
        return {}
    flags = fields.get("flags", "").split()
    return {"cpu_model": fields.get("model name", ""), "cpu_bf16": "avx512_bf16" in flags or "amx_bf16" in flags}


def describe_machine() -> dict[str, Any]:
    """What results were measured on: OS, CPU, GPU and library versions."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    info.update(_cpu_model())
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import gymnasium
        import mujoco

        info["mujoco"], info["gymnasium"] = mujoco.__version__, gymnasium.__version__
    except ImportError:
        pass
    return info
