"""Refit the frame decoder of a trained world model on its frozen latents.

Frames are a read-out: the dynamics, the state, reward and continue heads, and so every agent and
planner, never read them. The decoder can therefore train on after the rest of the model has
stopped, without changing any imagined trajectory. With the rest frozen, the posterior latent of
every training step is computed once; each step is then a plain regression from a fresh sample of
those latents to the real frames, far cheaper than a step of full training. The output is a new
checkpoint folder whose weights differ from the source in the frame decoder alone.

``reference=True`` first gives a model whose decoder draws from the latent alone a decoder that
blends with a real reference frame (``FrameDecoder``), its drawing layers starting from the old ones.
Each training frame's reference is a frame of the same episode at most ``reference_span`` steps
earlier, as an imagined rollout's is the real frame it started from.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from dreamsim.data.store import Episode
from dreamsim.device import describe_machine, resolve_device
from dreamsim.files import display_path
from dreamsim.model.checkpoint import check_fit, holds_checkpoint, load_for_task, provenance, save_checkpoint
from dreamsim.model.world_model import WorldModel, frames_to_float
from dreamsim.tasks import Task, load_task
from dreamsim.training.evaluation import fidelity, stack_episodes
from dreamsim.training.trainer import read_split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecoderConfig:
    steps: int = 4000
    batch_size: int = 256  # frames per step
    lr: float = 3e-4
    eval_episodes: int = 16
    log_every: int = 50
    seed: int = 0
    device: str = "auto"
    reference: bool = False  # switch a decoder that draws from the latent alone to one that blends
    reference_span: int = 50  # how many steps before its frame a reference may lie

    def __post_init__(self) -> None:
        names = ("steps", "batch_size", "eval_episodes", "log_every", "reference_span")
        small = [f"{n}={getattr(self, n)}" for n in names if getattr(self, n) < 1]
        if small:
            raise ValueError(f"decoder settings must be at least 1: {', '.join(small)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@torch.no_grad()
def posterior_latents(
    model: WorldModel, episodes: list[Episode], device: torch.device, batch: int = 64
) -> dict[str, torch.Tensor]:
    """Filter each episode from its first observation, as training does from a window's first step:
    the GRU state ``deter (N, D)``, the posterior log-probs ``logits (N, S, C)``, the real uint8
    ``frames (N, H, W, 3)`` and the step in its episode ``t (N,)`` of all ``N`` observations, each
    episode's in order of time (so ``i - t[i]`` indexes its first step)."""
    out: dict[str, list[torch.Tensor]] = {"deter": [], "logits": [], "frames": [], "t": [], "episode": []}
    episodes = sorted(episodes, key=len)  # batches of like lengths: little padding to step through
    for start in range(0, len(episodes), batch):
        chunk = episodes[start : start + batch]
        data = stack_episodes(chunk, max(len(e) for e in chunk), device)
        frames, obs, actions, valid = data["frames"], data["obs"], data["actions"], data["valid"]
        embed = model.embed(frames[:, 0], obs[:, 0])
        deter = model.first_deter(embed)
        logits = model.rssm.post_logits(deter, embed)
        for t in range(frames.shape[1]):
            if t > 0:
                deter = model.rssm.step_deter(deter, model.rssm.sample(logits), actions[:, t - 1])
                logits = model.rssm.post_logits(deter, model.embed(frames[:, t], obs[:, t]))
            keep = valid[:, t]
            out["deter"].append(deter[keep])
            out["logits"].append(logits[keep])
            out["frames"].append(frames[keep, t])
            out["t"].append(torch.full((int(keep.sum()),), t, device=device))
            out["episode"].append(torch.arange(start, start + len(chunk), device=device)[keep])
    flat = {k: torch.cat(v) for k, v in out.items()}
    order = torch.argsort(flat.pop("episode") * (flat["t"].max() + 1) + flat["t"])
    return {k: v[order] for k, v in flat.items()}


def with_reference_decoder(model: WorldModel) -> WorldModel:
    """A copy of ``model`` whose frame decoder blends with a reference frame; every other weight,
    and the decoder's drawing layers, start as ``model``'s (the mask's logit from the latent at zero)."""
    new = WorldModel(replace(model.cfg, frame_reference=True)).to(next(model.parameters()).device)
    weights = model.state_dict()
    with torch.no_grad():
        for k, v in new.state_dict().items():
            if k.startswith("frame_decoder.blend."):
                continue
            old = weights[k]
            if v.shape == old.shape:
                v.copy_(old)
            else:  # the last drawing layer: the colour channels, then the mask's logit at zero
                out_dim = 1 if v.dim() > 1 else 0  # ConvTranspose2d weights are (in, out, kh, kw)
                v.zero_()
                v.narrow(out_dim, 0, old.shape[out_dim]).copy_(old)
    return new


def _frame_scores(model: WorldModel, episodes: list[Episode], horizons: tuple[int, ...]) -> dict[str, float]:
    model.eval()
    result = fidelity(model, episodes, horizons)
    return {k: round(float(v), 2) for k, v in result.items() if "psnr" in k}


def tune_decoder(
    task: str | Task,
    episodes: str | Path,
    out: str | Path,
    config: DecoderConfig = DecoderConfig(),
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train the frame decoder of ``checkpoint`` (default: the task's shipped one) alone on the
    training split of the episode store ``episodes``, and write the result to ``out/checkpoint``.
    Returns the tuning record kept in its config: held-out frame PSNR before and after, steps, time.
    Ctrl-C writes the decoder tuned so far, then raises ``KeyboardInterrupt``."""
    card = load_task(task)
    out = Path(out)
    ckpt_dir = out / "checkpoint"
    if holds_checkpoint(ckpt_dir):
        raise FileExistsError(f"{out} already holds a checkpoint: choose another --out")
    device = resolve_device(config.device)
    source = load_for_task(card, checkpoint, device)
    train_eps, val_eps = read_split(card, episodes, config.eval_episodes)
    model = source.model
    check_fit(model.cfg, train_eps[0], episodes, source.path, card.name)

    torch.manual_seed(config.seed)
    tick = time.perf_counter()
    latents = posterior_latents(model, train_eps, device)
    before = _frame_scores(model, val_eps, card.horizons)
    if config.reference and not model.cfg.frame_reference:
        model = with_reference_decoder(model)
    decoder = model.frame_decoder.train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=config.lr)

    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    writer = SummaryWriter(str(out / "tb"))
    n = len(latents["deter"])
    step, interrupted = 0, False
    bar = tqdm(total=config.steps, unit="step", desc=f"tune decoder {card.name}", disable=not progress)
    try:
        while step < config.steps:
            index = torch.randint(n, (config.batch_size,), device=device)
            with torch.no_grad():
                feat = model.features(latents["deter"][index], model.rssm.sample(latents["logits"][index]))
                reference = None
                if model.cfg.frame_reference:
                    span = latents["t"][index].clamp_max(config.reference_span) + 1
                    lag = (torch.rand(config.batch_size, device=device) * span).long()
                    reference = frames_to_float(latents["frames"][index - lag])
            err = (decoder(feat, reference) - frames_to_float(latents["frames"][index])).square().sum((1, 2, 3)).mean()
            optimizer.zero_grad(set_to_none=True)
            err.backward()
            optimizer.step()
            step += 1
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                writer.add_scalar("loss/frame", float(err.detach()), step)
                bar.set_postfix(loss=f"{float(err.detach()):.2f}")
    except KeyboardInterrupt:
        log.warning("interrupted at step %d: writing the decoder so far to %s", step, ckpt_dir)
        interrupted = True
    finally:
        bar.close()
    after = _frame_scores(model, val_eps, card.horizons)
    for k, v in after.items():
        writer.add_scalar(f"val/{k}", v, step)
    writer.close()
    record = {
        "source": display_path(source.path),
        "steps": step,
        "wall_time_s": round(time.perf_counter() - tick, 1),
        "device": str(device),
        "machine": describe_machine(),
        "episode_folder": display_path(episodes),
        "episodes": len(train_eps),
        "real_steps": n - len(train_eps),
        "val_episodes": len(val_eps),
        "psnr_before": before,
        "psnr_after": after,
        "config": asdict(config),
    }
    info = provenance(source.config)
    info["decoder_tuning"] = [*source.config.get("decoder_tuning", []), record]
    save_checkpoint(ckpt_dir, model, card.name, source.start_states, info)
    if interrupted:
        raise KeyboardInterrupt  # written, then raised on, so that callers stop
    return record
