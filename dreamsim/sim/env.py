"""``DreamSimEnv``: the Gymnasium view (``N = 1``) of the batched learned simulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dreamsim.registration import JsonSpec
from dreamsim.sim.batch import BatchSim, reset_context
from dreamsim.tasks import DEFAULT_TASK


class DreamSimEnv(JsonSpec, gym.Env):
    """A MuJoCo task simulated by a learned world model.

    Args:
        task: task card name (``dreamsim.list_tasks()``).
        checkpoint: checkpoint folder; the task's shipped one when ``None``.
        obs_mode: ``state`` (the real env's Box), ``pixels`` (uint8 HxWx3), ``latent`` or ``dict``.
        device: ``auto`` (GPU when present), ``cpu`` or ``cuda``.
        render_mode: ``rgb_array`` (``render()`` returns the predicted frame) or ``None``.
        precision: ``fp32`` (default) or ``bf16`` (faster model calls on hardware with bf16 units).
        uncertainty_penalty: subtract this multiple of ``info["disagreement"]`` from every reward.
        start_episodes: a folder of real episodes; resets then start anywhere in them, not only at
            the shipped start states (with ``max_episode_steps``: MBPO's short branched rollouts).
        max_episode_steps: episode length (default: the task card's). Through ``gym.make`` the
            ``TimeLimit`` wrapper cuts episodes instead, at ``gym.make(id, max_episode_steps=N)``.

    ``reset(options={"obs": ..., "frame": ...})`` starts from a given real observation (state and
    uint8 frame); otherwise from a real start state shipped with the checkpoint. ``info`` of
    ``step()`` holds ``disagreement``, the spread of the model's ensemble (higher: less certain).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str = DEFAULT_TASK,
        checkpoint: str | Path | None = None,
        obs_mode: str = "state",
        device: str = "auto",
        render_mode: str | None = None,
        precision: str = "fp32",
        uncertainty_penalty: float = 0.0,
        start_episodes: str | Path | None = None,
        max_episode_steps: int | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}: use 'rgb_array' or None")
        self.sim = BatchSim(
            task, 1, checkpoint, obs_mode, device, precision, uncertainty_penalty, max_episode_steps, start_episodes
        )
        self.task = self.sim.task
        self.checkpoint = self.sim.checkpoint
        self.observation_space = self.sim.observation_space
        self.action_space = self.sim.action_space
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.sim.real_fps}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        context = reset_context(options)
        if context is not None:
            context = {k: np.asarray(v) for k, v in context.items()}
            size = self.task.frame_size
            expected = {"obs": self.sim.state_space.shape, "frame": (size, size, 3)}
            for k, v in context.items():
                if v.shape != expected[k]:
                    raise ValueError(
                        f"reset option {k!r} has shape {v.shape}, expected {expected[k]} (one observation): "
                        f"observations and frames come from dreamsim.make_real({self.task.name!r})"
                    )
            context = {k: v[None] for k, v in context.items()}
        return self._first(self.sim.to_numpy(self.sim.reset(context=context, seeds=[seed]))), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        act = np.asarray(action, dtype=np.float32)
        if act.shape != self.action_space.shape:
            raise ValueError(f"action has shape {act.shape}, expected {self.action_space.shape} for {self.task.gym_id}")
        obs, reward, terminated, truncated, disagreement = self.sim.step_numpy(act[None])
        info = {"disagreement": float(disagreement[0])}
        return self._first(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """The predicted frame, uint8 ``(H, W, 3)``; ``None`` (with a warning) without ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array', e.g. gym.make('DreamSim-v0', render_mode='rgb_array')")
            return None
        return self.sim.render()[0].cpu().numpy()

    def close(self) -> None:
        self.sim.state = None  # the batch state's tensors; the model goes with the env

    @staticmethod
    def _first(obs: Any) -> Any:
        return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]


def make_env(**kwargs: Any) -> DreamSimEnv:
    """``gym.make``'s entry point. ``gym.make`` keeps ``max_episode_steps`` for its ``TimeLimit``
    wrapper (the card's length unless given), so the env itself does not cut episodes: a longer
    limit than the card's must not be cut short underneath it."""
    kwargs.setdefault("max_episode_steps", sys.maxsize)
    return DreamSimEnv(**kwargs)
