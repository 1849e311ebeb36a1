"""Held-out fidelity of a world model against recorded real episodes.

Three views, each beside the copy-last-observation baseline:
- one-step: the model filters the real observations up to ``t`` and predicts ``t + 1``;
- cold start: from the real observation at ``t`` alone (any step, mid-episode too), it predicts
  ``t + 1``: how well an imagined episode starts from a given real state;
- open-loop: from the real observation at step 0, the model rolls the episode's actions alone and
  is compared with the real episode ``h`` steps later.
Frames are scored by PSNR (dB), states by the RMS error in units of each dimension's std.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dreamsim.data.store import Episode
from dreamsim.device import seeded
from dreamsim.model.world_model import WorldModel

# Identical frames score this rather than infinity (or whatever a tiny floor under the error gives),
# so that repeated frames cannot swamp a mean: about what uint8 rounding alone leaves (58.9 dB).
PSNR_MAX = 60.0


def psnr(pred: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-frame PSNR in dB of uint8 frames ``(..., H, W, 3)`` -> ``(...)``, at most ``PSNR_MAX``."""
    mse = (pred.float() - real.float()).square().mean((-1, -2, -3))
    return (10 * torch.log10(255.0**2 / mse.clamp_min(1e-10))).clamp_max(PSNR_MAX)


def ssim(pred: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-frame SSIM of uint8 frames ``(..., H, W, 3)`` -> ``(...)``: the standard 11x11 Gaussian
    window (sigma 1.5), K1 = 0.01, K2 = 0.03, computed per colour channel and averaged over the
    valid (unpadded) window positions."""
    if min(pred.shape[-3:-1]) < 11:
        raise ValueError(f"SSIM's 11x11 window needs frames of at least 11x11 pixels, got {tuple(pred.shape[-3:-1])}")
    lead = pred.shape[:-3]
    x = pred.reshape(-1, *pred.shape[-3:]).permute(0, 3, 1, 2).double()
    y = real.reshape(-1, *real.shape[-3:]).permute(0, 3, 1, 2).double()
    g = torch.exp(-((torch.arange(11, dtype=torch.float64, device=x.device) - 5) ** 2) / (2 * 1.5**2))
    g = g / g.sum()

    def band(n: int) -> torch.Tensor:
        """``(n - 10, n)``: row i holds the window over columns i..i+10 (a valid 1-D convolution)."""
        offset = torch.arange(n, device=x.device)[None, :] - torch.arange(n - 10, device=x.device)[:, None]
        return torch.where((offset >= 0) & (offset < 11), g[offset.clamp(0, 10)], 0.0)

    # The Gaussian window is separable, so blurring is two matrix products, over all five maps at
    # once: the 2-D window's result, at a fifteenth of a float64 convolution's time on a CPU.
    maps = torch.cat([x, y, x * x, y * y, x * y], 1)
    blurred = band(maps.shape[-2]) @ maps @ band(maps.shape[-1]).T
    mx, my, exx, eyy, exy = blurred.chunk(5, 1)
    vx, vy, cov = exx - mx**2, eyy - my**2, exy - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.mean((1, 2, 3)).float().reshape(lead)


def stack_episodes(episodes: list[Episode], length: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad episodes to ``length`` steps: frames/obs ``(B, length+1, ...)``, actions ``(B, length, A)``,
    valid ``(B, length+1)`` (False past an episode's end)."""
    b = len(episodes)
    ep0 = episodes[0]
    frames = np.zeros((b, length + 1, *ep0.frames.shape[1:]), np.uint8)
    obs = np.zeros((b, length + 1, ep0.obs.shape[1]), np.float32)
    actions = np.zeros((b, length, ep0.actions.shape[1]), np.float32)
    valid = np.zeros((b, length + 1), bool)
    for i, ep in enumerate(episodes):
        n = min(len(ep), length)
        frames[i, : n + 1] = ep.frames[: n + 1]
        obs[i, : n + 1] = ep.obs[: n + 1]
        actions[i, :n] = ep.actions[:n]
        valid[i, : n + 1] = True
    as_t = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
    return {"frames": as_t(frames), "obs": as_t(obs), "actions": as_t(actions), "valid": as_t(valid)}


@torch.no_grad()
def fidelity(
    model: WorldModel, episodes: list[Episode], horizons: tuple[int, ...], batch: int = 64, seed: int = 0
) -> dict[str, Any]:
    """Fidelity metrics over ``episodes`` (see module doc), as a JSON-ready dict. Horizons longer
    than every episode are left out; latent samples are seeded, so the numbers repeat."""
    if not episodes:
        raise ValueError("no held-out episodes to evaluate on")
    longest = max(len(e) for e in episodes)
    if not horizons or min(horizons) > longest:
        raise ValueError(
            f"no horizon in {horizons} fits the longest held-out episode ({longest} steps): pass a horizon of at most "
            f"{longest}, or episodes that last longer"
        )
    horizons = tuple(h for h in horizons if h <= longest)
    with seeded(seed):  # the caller's generators untouched
        return _fidelity(model, episodes, horizons, batch)


def _fidelity(model: WorldModel, episodes: list[Episode], horizons: tuple[int, ...], batch: int) -> dict[str, Any]:
    device = next(model.parameters()).device
    length = max(len(e) for e in episodes)  # one-step views: every step of every episode
    opened = max(horizons)  # open loop: as far as the longest horizon
    std = model.state_std
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}

    def add(key: str, values: torch.Tensor, mask: torch.Tensor) -> None:
        sums[key] = sums.get(key, 0.0) + float((values * mask).sum())
        counts[key] = counts.get(key, 0.0) + float(mask.sum())

    def state_err(pred: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return ((pred - real) / std).square().mean(-1).sqrt()

    for start in range(0, len(episodes), batch):
        data = stack_episodes(episodes[start : start + batch], length, device)
        frames, obs, actions, valid = data["frames"], data["obs"], data["actions"], data["valid"].float()
        # Open loop from step 0.
        pred = model.open_loop(frames[:, 0], obs[:, 0], actions[:, :opened])
        for h in horizons:
            m = valid[:, h]
            add(f"open_loop/{h}/psnr", psnr(pred["frames"][:, h - 1], frames[:, h]), m)
            add(f"open_loop/{h}/state_error", state_err(pred["states"][:, h - 1], obs[:, h]), m)
            add(f"open_loop/{h}/psnr_copy_last", psnr(frames[:, 0], frames[:, h]), m)
            add(f"open_loop/{h}/state_error_copy_last", state_err(obs[:, 0], obs[:, h]), m)
        # One step ahead, filtering the real observations.
        deter, stoch = model.initial(frames[:, 0], obs[:, 0])
        for t in range(length):
            m = valid[:, t + 1]
            if not m.any():
                break
            deter, prior_stoch, _ = model.imagine(deter, stoch, actions[:, t])
            feat = model.features(deter, prior_stoch)
            add("one_step/psnr", psnr(model.decode_frame(feat, frames[:, t]), frames[:, t + 1]), m)
            add("one_step/state_error", state_err(model.decode_state(feat), obs[:, t + 1]), m)
            add("one_step/psnr_copy_last", psnr(frames[:, t], frames[:, t + 1]), m)
            add("one_step/state_error_copy_last", state_err(obs[:, t], obs[:, t + 1]), m)
            stoch = model.posterior(deter, frames[:, t + 1], obs[:, t + 1])
    # One step from a single observation at every step: a pass of its own, after the views above,
    # so that their sampling noise (and numbers) are what they were before this view existed.
    for start in range(0, len(episodes), batch):
        data = stack_episodes(episodes[start : start + batch], length, device)
        frames, obs, actions, valid = data["frames"], data["obs"], data["actions"], data["valid"].float()
        for t in range(length):
            m = valid[:, t + 1]
            if not m.any():
                break
            deter, stoch = model.initial(frames[:, t], obs[:, t])
            feat = model.features(*model.imagine(deter, stoch, actions[:, t])[:2])
            add("cold_start/psnr", psnr(model.decode_frame(feat, frames[:, t]), frames[:, t + 1]), m)
            add("cold_start/state_error", state_err(model.decode_state(feat), obs[:, t + 1]), m)
    result: dict[str, Any] = {k: sums[k] / max(counts[k], 1.0) for k in sums}
    result["episodes"] = len(episodes)
    return result


def fidelity_table(metrics: dict[str, Any], horizons: tuple[int, ...]) -> str:
    """Markdown table of a ``fidelity`` result."""
    rows = [
        "| prediction | frame PSNR (dB) | copy-last PSNR | state error (std) | copy-last state error |",
        "|---|---|---|---|---|",
    ]
    keys = [("one-step (filtered)", "one_step"), ("one-step from one observation (any step)", "cold_start")]
    keys += [(f"open-loop h={h}", f"open_loop/{h}") for h in horizons]
    for label, k in keys:
        if f"{k}/psnr" in metrics:
            base = "one_step" if k == "cold_start" else k  # the same steps, so the same baseline
            rows.append(
                f"| {label} | {metrics[f'{k}/psnr']:.2f} | {metrics[f'{base}/psnr_copy_last']:.2f} "
                f"| {metrics[f'{k}/state_error']:.3f} | {metrics[f'{base}/state_error_copy_last']:.3f} |"
            )
    return "\n".join(rows)
