"""Throughput of DreamSim against real MuJoCo on this machine (``dreamsim bench``).

DreamSim is timed on its torch path (``BatchSim``: one batched model call per step, no host copy)
in ``state`` and ``pixels`` observation modes, in float32 and with bf16 model calls. MuJoCo is
timed as one Gymnasium env (step; step + 64x64 render) and as an ``AsyncVectorEnv`` over every core (step + render).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from dreamsim.device import describe_machine, resolve_device
from dreamsim.sim.batch import BatchSim
from dreamsim.tasks import DEFAULT_TASK, load_task, make_real


@dataclass(frozen=True)
class BenchConfig:
    task: str = DEFAULT_TASK
    batches: tuple[int, ...] = (1, 64, 1024, 16384)
    obs_modes: tuple[str, ...] = ("state", "pixels")
    precisions: tuple[str, ...] = ("fp32", "bf16")
    seconds: float = 3.0  # time spent measuring each configuration (after warm-up)
    device: str = "auto"
    checkpoint: str | None = None

    def __post_init__(self) -> None:
        if not self.batches or min(self.batches) < 1:
            raise ValueError(f"batches must each be 1 env or more, got {list(self.batches)}")
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step: Any, seconds: float, sync: Any) -> tuple[int, float]:
    """Run ``step()`` until ``seconds`` have passed (at least 3 times); returns (calls, elapsed)."""
    step()  # warm-up (allocations, kernels)
    sync()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        step()
        calls += 1
    sync()
    return calls, time.perf_counter() - start


def dreamsim_rate(cfg: BenchConfig, batch: int, obs_mode: str, precision: str = "fp32") -> dict[str, Any]:
    sim = BatchSim(cfg.task, batch, cfg.checkpoint, obs_mode, cfg.device, precision)
    sim.seed(range(batch))
    sim.reset()
    low = torch.as_tensor(sim.action_space.low, device=sim.device)
    high = torch.as_tensor(sim.action_space.high, device=sim.device)
    actions = low + (high - low) * torch.rand(batch, *low.shape, device=sim.device)
    calls, elapsed = _timed(lambda: sim.step(actions), cfg.seconds, lambda: _sync(sim.device))
    rate = batch * calls / elapsed
    return {
        "sim": "dreamsim" if precision == "fp32" else f"dreamsim ({precision})",
        "obs_mode": obs_mode,
        "batch": batch,
        "steps_per_s": rate,
        "frames_per_s": rate if obs_mode == "pixels" else 0.0,
        "ms_per_batch_step": 1000 * elapsed / calls,
    }


def mujoco_rate(cfg: BenchConfig, render: bool) -> dict[str, Any]:
    with make_real(cfg.task, render=render) as env:  # closed on an error too
        env.reset(seed=0)
        env.action_space.seed(0)
        actions = [env.action_space.sample() for _ in range(256)]
        counter = iter(range(1 << 62))

        def step() -> None:
            i = next(counter)
            _, _, terminated, truncated, _ = env.step(actions[i % 256])
            if render:
                env.render()
            if terminated or truncated:
                env.reset()

        calls, elapsed = _timed(step, cfg.seconds, lambda: None)
    rate = calls / elapsed
    name = "mujoco (1 env, step + render)" if render else "mujoco (1 env, step)"
    return {"sim": name, "obs_mode": "pixels" if render else "state", "batch": 1, "steps_per_s": rate,
            "frames_per_s": rate if render else 0.0}  # fmt: skip


def mujoco_async_rate(cfg: BenchConfig, workers: int) -> dict[str, Any]:
    from gymnasium.vector import AsyncVectorEnv

    fns = [functools.partial(make_real, cfg.task, True) for _ in range(workers)]
    with contextlib.closing(AsyncVectorEnv(fns, context="spawn")) as env:  # workers open their own renderers
        env.reset(seed=0)
        env.action_space.seed(0)
        action = env.action_space.sample()

        def step() -> None:
            env.step(action)
            env.call("render")

        calls, elapsed = _timed(step, cfg.seconds, lambda: None)
    rate = workers * calls / elapsed
    return {"sim": f"mujoco (AsyncVectorEnv x{workers}, step + render)", "obs_mode": "pixels", "batch": workers,
            "steps_per_s": rate, "frames_per_s": rate}  # fmt: skip


def run(cfg: BenchConfig, progress: Any = None) -> dict[str, Any]:
    """All measurements in one run; ``progress(str)`` is told what runs next."""
    say = progress or (lambda _: None)
    load_task(cfg.task)
    for precision in cfg.precisions:  # a bad checkpoint, device, mode or precision fails now, before the MuJoCo rows
        for mode in cfg.obs_modes:
            BatchSim(cfg.task, 1, cfg.checkpoint, mode, cfg.device, precision)
    rows = []
    say("mujoco, one env")
    rows += [mujoco_rate(cfg, render=False), mujoco_rate(cfg, render=True)]
    workers = os.cpu_count() or 1
    say(f"mujoco, AsyncVectorEnv x{workers}")
    rows.append(mujoco_async_rate(cfg, workers))
    for precision in cfg.precisions:
        for mode in cfg.obs_modes:
            for batch in cfg.batches:
                say(f"dreamsim {precision} {mode} batch {batch}")
                rows.append(dreamsim_rate(cfg, batch, mode, precision))
    best_real_frames = max(r["frames_per_s"] for r in rows if r["sim"].startswith("mujoco"))
    best_real_steps = max(r["steps_per_s"] for r in rows if r["sim"].startswith("mujoco"))
    for r in rows:
        r["x_mujoco_steps"] = r["steps_per_s"] / best_real_steps
        r["x_mujoco_frames"] = r["frames_per_s"] / best_real_frames if r["frames_per_s"] else 0.0
    device = resolve_device(cfg.device)
    return {"task": cfg.task, "device": str(device), "machine": describe_machine(), "config": cfg.__dict__, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    cpu = f"{m['cpu_count']}-core CPU ({m['processor']})"
    where = m["gpu"] if m.get("gpu") and str(result["device"]).startswith("cuda") else cpu  # a CPU run on a GPU machine
    lines = [
        f"Task `{result['task']}`, DreamSim on `{result['device']}`, {where}; torch {m['torch']}, mujoco {m.get('mujoco')}.",
        "Ratios are against the fastest MuJoCo row (steps: any; frames: with rendering).",
        "",
        "| simulator | obs | batch | steps/s | frames/s | x MuJoCo steps | x MuJoCo frames |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        frames = f"{r['frames_per_s']:,.0f}" if r["frames_per_s"] else "-"
        xf = f"{r['x_mujoco_frames']:.1f}" if r["frames_per_s"] else "-"
        steps, xs = f"{r['steps_per_s']:,.0f}", f"{r['x_mujoco_steps']:.2f}"
        lines.append(f"| {r['sim']} | {r['obs_mode']} | {r['batch']} | {steps} | {frames} | {xs} | {xf} |")
    return "\n".join(lines) + "\n"
