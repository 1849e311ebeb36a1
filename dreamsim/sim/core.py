"""The batched functional core of the learned simulator.

One ``DreamCore`` holds a world model on one device; a ``SimState`` holds the state of ``N``
environments. ``initial``, ``transition`` and ``render`` are pure functions of their inputs:
randomness comes from a counter-based hash of each env's seed and step, so an env's rollout does not
depend on the batch it runs in. The Gymnasium env is the ``N = 1`` view of this core.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch

from dreamsim.model.world_model import WorldModel

OBS_MODES = ("state", "pixels", "latent", "dict")
PRECISIONS = ("fp32", "bf16")
_MASK32 = 0xFFFFFFFF


@dataclass(frozen=True)
class SimState:
    """Batch state of ``N`` envs: ``deter (N, deter)``, ``stoch (N, stoch, classes)``,
    ``t (N,)`` steps taken, ``seed (N,)`` noise seeds (int64) and, for a model whose frame decoder
    blends with a reference, the uint8 start frames ``reference (N, H, W, 3)``."""

    deter: torch.Tensor
    stoch: torch.Tensor
    t: torch.Tensor
    seed: torch.Tensor
    reference: torch.Tensor | None = None


def hash_bits(seed: torch.Tensor, t: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` random 24-bit integers per env ``(N, count)``, a fixed function of ``seed (N,)`` and
    ``t (N,)``: murmur3's 32-bit finaliser over (seed, t, index), computed in int64 and masked to 32
    bits, so it is the same on every device and batch size."""
    index = torch.arange(count, device=seed.device, dtype=torch.int64)
    x = (seed[:, None] * 0x9E3779B1 + t[:, None] * 0x85EBCA77 + index[None] * 0xC2B2AE3D) & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x85EBCA6B) & _MASK32
    x = x ^ (x >> 13)
    x = (x * 0xC2B2AE35) & _MASK32
    x = x ^ (x >> 16)
    return x >> 8


def hash_uniform(seed: torch.Tensor, t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniforms in (0, 1) of shape ``(N, *shape)`` from ``hash_bits``."""
    count = 1
    for s in shape:
        count *= s
    u = (hash_bits(seed, t, count).float() + 0.5) / float(1 << 24)
    return u.reshape(len(seed), *shape)


class DreamCore:
    """Batched learned simulator over ``model``; ``obs_mode`` picks what ``transition`` observes."""

    def __init__(
        self,
        model: WorldModel,
        episode_length: int,
        action_low: torch.Tensor,
        action_high: torch.Tensor,
        obs_mode: str = "state",
        precision: str = "fp32",
    ):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"unknown obs_mode {obs_mode!r}: choose one of {OBS_MODES}")
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}: choose one of {PRECISIONS}")
        self.model = model.eval()
        self.precision = precision
        self.episode_length = episode_length
        self.obs_mode = obs_mode
        self.device = next(model.parameters()).device
        self.action_low = action_low.to(self.device, torch.float32)
        self.action_high = action_high.to(self.device, torch.float32)
        cfg = model.cfg
        self._stoch_shape = (cfg.stoch, cfg.classes)

    def _autocast(self) -> torch.autocast:
        """bf16 matmuls and convolutions when asked for; the latent state itself stays float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    @torch.inference_mode()
    def initial(self, frames: torch.Tensor, states: torch.Tensor, seeds: torch.Tensor) -> SimState:
        """Start ``N`` episodes at real observations: uint8 ``frames (N, H, W, 3)``, ``states (N, D)``,
        int64 ``seeds (N,)``."""
        frames = frames.to(self.device)
        states = states.to(self.device, torch.float32)
        seeds = seeds.to(self.device, torch.int64)
        t = torch.zeros_like(seeds)
        with self._autocast():
            deter, stoch = self.model.initial(frames, states, hash_uniform(seeds, t, self._stoch_shape))
        reference = frames if self.model.cfg.frame_reference else None
        return SimState(deter=deter.float(), stoch=stoch.float(), t=t, seed=seeds, reference=reference)

    @torch.inference_mode()
    def transition(
        self, state: SimState, action: torch.Tensor
    ) -> tuple[SimState, Any, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """One step of all ``N`` envs under ``action (N, A)`` (clipped to the action space).

        Returns ``(state, obs, reward (N,), terminated (N,), truncated (N,), info)``; ``info`` holds
        ``disagreement (N,)``, the prior ensemble's spread (higher = less certain).
        """
        action = torch.maximum(torch.minimum(action.to(self.device, torch.float32), self.action_high), self.action_low)
        t = state.t + 1
        uniform = hash_uniform(state.seed, t, self._stoch_shape)
        with self._autocast():
            deter, stoch, disagreement = self.model.imagine(state.deter, state.stoch, action, uniform)
            deter, stoch = deter.float(), stoch.float()
            feat = self.model.features(deter, stoch)
            reward = self.model.reward(feat)
            terminated = self.model.continue_prob(feat) < 0.5
            obs = self._observe(feat, state.reference)
        truncated = (t >= self.episode_length) & ~terminated
        new = replace(state, deter=deter, stoch=stoch, t=t)
        return new, obs, reward, terminated, truncated, {"disagreement": disagreement.float()}

    @torch.inference_mode()
    def observe(self, state: SimState) -> Any:
        """The observation of ``state`` in this core's ``obs_mode``."""
        with self._autocast():
            return self._observe(self.model.features(state.deter, state.stoch), state.reference)

    @torch.inference_mode()
    def render(self, state: SimState) -> torch.Tensor:
        """Predicted uint8 frames ``(N, H, W, 3)``."""
        with self._autocast():
            return self.model.decode_frame(self.model.features(state.deter, state.stoch), state.reference)

    def _observe(self, feat: torch.Tensor, reference: torch.Tensor | None) -> Any:
        mode = self.obs_mode
        if mode == "state":
            return self.model.decode_state(feat)
        if mode == "pixels":
            return self.model.decode_frame(feat, reference)
        if mode == "latent":
            return feat.float()
        return {"state": self.model.decode_state(feat), "pixels": self.model.decode_frame(feat, reference)}
