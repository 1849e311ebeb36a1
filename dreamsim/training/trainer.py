"""World-model trainer: TensorBoard logging, held-out evaluation, periodic checkpoints, resume.

Output folder layout (``out``): ``checkpoint/`` (the latest training checkpoint, with optimizer
state) and ``tb/`` (TensorBoard events). Ctrl-C writes a checkpoint before returning.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dreamsim.data.store import Episode, EpisodeStore, SequenceSampler
from dreamsim.device import describe_machine, resolve_device
from dreamsim.files import display_path
from dreamsim.model.checkpoint import (
    check_fit,
    has_training_state,
    holds_checkpoint,
    load_checkpoint,
    load_optimizer,
    provenance,
    save_checkpoint,
)
from dreamsim.model.config import preset
from dreamsim.model.world_model import WorldModel
from dreamsim.tasks import Task, load_task
from dreamsim.training.evaluation import fidelity

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 16
    seq_len: int = 32
    lr: float = 6e-4
    grad_clip: float = 100.0
    preset: str | None = None  # model preset; the task card's when None
    eval_every: int = 250
    eval_episodes: int = 16
    checkpoint_every: int = 250
    log_every: int = 25
    start_states: int = 256  # real start observations shipped with the checkpoint
    seed: int = 0
    device: str = "auto"
    init: str | None = None  # checkpoint folder to start from: its weights and state statistics, a fresh optimizer
    # Also train imagined rollouts of this many steps, from every posterior latent of a window that
    # leaves room, on the real states and rewards (0: one-step losses only; at most seq_len - 1).
    open_loop_steps: int = 0

    def __post_init__(self) -> None:
        counts = (
            "steps", "batch_size", "seq_len", "eval_every", "eval_episodes", "checkpoint_every", "log_every", "start_states"
        )  # fmt: skip
        small = [f"{name}={getattr(self, name)}" for name in counts if getattr(self, name) < 1]
        if small:
            raise ValueError(f"training settings must be at least 1: {', '.join(small)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.open_loop_steps < self.seq_len:
            raise ValueError(
                f"open_loop_steps must be from 0 to seq_len - 1 = {self.seq_len - 1}, got {self.open_loop_steps}: "
                "lengthen --seq-len or shorten --open-loop-steps"
            )
        if self.init and self.preset:
            raise ValueError("--init keeps the start checkpoint's model sizes and --preset sets new ones: pass one of them")


def _start_states(episodes: list[Episode], n: int) -> dict[str, np.ndarray]:
    chosen = episodes[:n]
    return {
        "obs": np.stack([e.obs[0] for e in chosen]),
        "frames": np.stack([e.frames[0] for e in chosen]),
        "qpos": np.stack([e.qpos[0] for e in chosen]),
        "qvel": np.stack([e.qvel[0] for e in chosen]),
    }


def read_split(card: Task, episodes: str | Path, eval_episodes: int) -> tuple[list[Episode], list[Episode]]:
    """The store's training episodes, and up to ``eval_episodes`` of its held-out ones (training
    episodes when it holds none out, as a store of very few episodes does)."""
    store = EpisodeStore(episodes)
    train_paths, val_paths = store.split()
    if not train_paths:
        raise store.empty_error(f"run `dreamsim collect {card.name} --out {episodes}` first")
    eps = list(store.episodes([*train_paths, *val_paths[:eval_episodes]]))
    train_eps, val_eps = eps[: len(train_paths)], eps[len(train_paths) :]
    return train_eps, val_eps or train_eps[:eval_episodes]


def _to_torch(batch: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v).to(device, non_blocking=True) for k, v in batch.items()}


def train(
    task: str | Task,
    episodes: str | Path,
    out: str | Path,
    config: TrainConfig = TrainConfig(),
    resume: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Train a world model for ``task`` on the episode store ``episodes``; returns the last metrics.
    Ctrl-C (or SIGTERM under the CLI) writes a checkpoint to resume from, then raises ``KeyboardInterrupt``."""
    card = load_task(task)
    out = Path(out)
    ckpt_dir = out / "checkpoint"
    if resume and not has_training_state(ckpt_dir):
        if holds_checkpoint(ckpt_dir):
            raise FileNotFoundError(
                f"{ckpt_dir} holds a model but no training state to resume (a shipped or decoder-tuned checkpoint): "
                f"start a new run from it with --init {ckpt_dir} --out <another folder>"
            )
        raise FileNotFoundError(f"nothing to resume in {out}: no training checkpoint at {ckpt_dir}")
    if not resume and holds_checkpoint(ckpt_dir):
        raise FileExistsError(f"{out} already holds a checkpoint: pass --resume to continue it, or choose another --out")
    if resume and config.init:
        raise ValueError("--init starts a new run from a checkpoint and --resume continues one: pass one of them")
    train_eps, val_eps = read_split(card, episodes, config.eval_episodes)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    sampler = SequenceSampler(train_eps, seed=config.seed)
    state_dim, action_dim = train_eps[0].obs.shape[1], train_eps[0].actions.shape[1]

    step, wall = 0, 0.0
    preset_name = config.preset or card.model_preset
    history: dict[str, Any] = {}  # the start checkpoint's own record, kept in every checkpoint of an --init run
    start = ckpt_dir if resume else config.init
    if start:
        saved = load_checkpoint(start, device, task=card.name)
        model, preset_name = saved.model.train(), saved.config.get("preset", preset_name)
        if resume and config.preset and config.preset != preset_name:
            raise ValueError(f"{saved.path} was trained with preset {preset_name!r}: resume it without --preset {config.preset}")
        check_fit(model.cfg, train_eps[0], episodes, saved.path, card.name)
        history = saved.config.get("init", {}) if resume else {"source": display_path(saved.path), **provenance(saved.config)}
    else:
        model_cfg = preset(preset_name, state_dim, action_dim, card.frame_size)
        model = WorldModel(model_cfg).to(device)
        obs = torch.as_tensor(np.concatenate([e.obs for e in train_eps]))
        model.set_state_stats(obs.mean(0).to(device), obs.std(0).to(device))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-8)
    if resume:
        state = load_optimizer(ckpt_dir, optimizer)
        for group in optimizer.param_groups:  # the saved state brings back the old rate: use the one asked for
            group["lr"] = config.lr
        step, wall = int(state["step"]), float(state["wall_time_s"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.manual_seed(config.seed + step)
    starts = _start_states(train_eps, config.start_states)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()

    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    writer = SummaryWriter(str(out / "tb"))
    metrics: dict[str, Any] = {}

    def checkpoint() -> None:
        info = {
            "preset": preset_name,
            "training": {
                "steps": step,
                "wall_time_s": round(wall, 1),
                "device": str(device),
                "machine": describe_machine(),
                "episodes": len(train_eps),
                "real_steps": sampler.steps,
                "config": asdict(config),
            },
            **({"init": history} if history else {}),
        }
        trainer_state = {"step": step, "wall_time_s": wall, "sampler_rng": sampler.rng.bit_generator.state}
        save_checkpoint(ckpt_dir, model, card.name, starts, info, optimizer, trainer_state)

    bar = tqdm(total=config.steps, initial=step, unit="step", desc=f"train {card.name}", disable=not progress)
    try:
        while step < config.steps:
            tick = time.perf_counter()
            batch = _to_torch(sampler.sample(config.batch_size, config.seq_len), device)
            with autocast:
                loss, metrics = model.loss(batch, config.open_loop_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))
            optimizer.step()
            step += 1
            wall += time.perf_counter() - tick
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                for k, v in metrics.items():
                    writer.add_scalar(k, v, step)
                bar.set_postfix(loss=f"{metrics['loss/total']:.1f}")
            if step % config.eval_every == 0 or step == config.steps:
                metrics.update(_evaluate(model, val_eps, card, writer, step))
            if step % config.checkpoint_every == 0 or step == config.steps:
                checkpoint()
    except KeyboardInterrupt:
        # Saved, then raised on: a caller (the loop, the CLI) must stop rather than go on as if
        # training had finished.
        log.warning("interrupted at step %d: writing a checkpoint to %s", step, ckpt_dir)
        checkpoint()
        raise
    finally:
        bar.close()
        writer.close()
    metrics["step"] = step
    return metrics


@torch.no_grad()
def _evaluate(model: WorldModel, episodes: list[Episode], card: Task, writer: Any, step: int) -> dict[str, float]:
    model.eval()
    result = fidelity(model, episodes, card.horizons)
    scalars = {f"val/{k}": float(v) for k, v in result.items() if k != "episodes"}
    for k, v in scalars.items():
        writer.add_scalar(k, v, step)
    # Images: reconstruction of real frames, and open-loop prediction under the truth.
    device = next(model.parameters()).device
    ep = episodes[0]
    n = min(16, len(ep))
    frames = torch.as_tensor(ep.frames[: n + 1], device=device)
    obs = torch.as_tensor(ep.obs[: n + 1], device=device)
    actions = torch.as_tensor(ep.actions[None, :n], device=device)
    deter, stoch = model.initial(frames, obs)
    recon = model.decode_frame(model.features(deter, stoch), frames[:1].expand_as(frames))
    pred = model.open_loop(frames[:1], obs[:1], actions)["frames"][0]
    to_row = lambda x: torch.cat(list(x), 1)  # (N, H, W, 3) -> (H, N*W, 3)  # noqa: E731
    writer.add_image("val/reconstruction", torch.cat([to_row(frames), to_row(recon)], 0), step, dataformats="HWC")
    writer.add_image("val/open_loop", torch.cat([to_row(frames[1:]), to_row(pred)], 0), step, dataformats="HWC")
    model.train()
    return scalars
