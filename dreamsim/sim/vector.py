"""``DreamSimVectorEnv``: the native Gymnasium ``VectorEnv`` view of the batched core.

One batched model call steps all N envs. Autoreset follows Gymnasium's next-step convention: an
env whose episode ended on step ``t`` is reset on step ``t + 1`` (its action there is ignored, its
reward is 0). The torch-tensor path is ``env.sim`` (a ``BatchSim``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from dreamsim.registration import JsonSpec
from dreamsim.sim.batch import BatchSim, reset_context
from dreamsim.tasks import DEFAULT_TASK


class DreamSimVectorEnv(JsonSpec, VectorEnv):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 20, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        task: str = DEFAULT_TASK,
        checkpoint: str | Path | None = None,
        obs_mode: str = "state",
        device: str = "auto",
        render_mode: str | None = None,
        precision: str = "fp32",
        uncertainty_penalty: float = 0.0,
        max_episode_steps: int | None = None,
        start_episodes: str | Path | None = None,
    ):
        """``max_episode_steps`` (passed by ``gym.make_vec`` from the spec) overrides the card's length;
        ``start_episodes`` as in ``DreamSimEnv``."""
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}: use 'rgb_array' or None")
        self.sim = BatchSim(
            task, num_envs, checkpoint, obs_mode, device, precision, uncertainty_penalty, max_episode_steps, start_episodes
        )
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_observation_space = self.sim.observation_space
        self.single_action_space = self.sim.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, bool)
        self.metadata = {**self.metadata, "render_fps": self.sim.real_fps}

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """``seed``: an int seeds env ``i`` with ``seed + i``; a list gives each env its own.
        ``options["reset_mask"]`` (bool ``(N,)``, as Gymnasium's vector envs take it) resets only
        those envs (and seeds only them); the others keep their episodes and observations.
        ``options["obs"]`` and ``options["frame"]`` start the reset envs from real observations: one
        per env reset, or one for all."""
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            seed = int(seed)
        elif seed is not None and (isinstance(seed, str) or not isinstance(seed, (Sequence, np.ndarray))):
            raise ValueError(f"seed must be an int or a list of {self.num_envs} (int or None), got {seed!r}")
        super().reset(seed=seed if isinstance(seed, int) else None)
        seeds: list[int | None] = (
            [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed or [None] * self.num_envs)
        )
        if len(seeds) != self.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        mask = self._reset_mask(options)
        context = reset_context(options, ("obs", "frame", "reset_mask"))
        envs = np.flatnonzero(mask).tolist()
        obs = self.sim.reset(envs, context=context, seeds=[seeds[i] for i in envs])  # context rows: the masked envs'
        self._autoreset[mask] = False
        return self.sim.to_numpy(obs if mask.all() else self.sim.observe()), {}

    def _reset_mask(self, options: dict[str, Any] | None) -> np.ndarray:
        if not options or "reset_mask" not in options:
            return np.ones(self.num_envs, bool)
        mask = options["reset_mask"]
        if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (self.num_envs,):
            raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({self.num_envs},), got {mask!r}")
        if not mask.any():
            raise ValueError("options['reset_mask'] resets no env: set at least one True")
        return mask

    def close_extras(self, **kwargs: Any) -> None:
        self.sim.state = None

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, reward, terminated, truncated, disagreement = self.sim.step_numpy(actions)
        restart = np.flatnonzero(self._autoreset)
        if len(restart):
            obs = self.sim.splice(obs, restart, self.sim.to_numpy(self.sim.reset(restart.tolist())))
            reward[restart], terminated[restart], truncated[restart], disagreement[restart] = 0.0, False, False, 0.0
        stepped = ~self._autoreset  # a restarted env's info is its reset's, which has no disagreement
        self._autoreset = terminated | truncated
        return obs, reward, terminated, truncated, {"disagreement": disagreement, "_disagreement": stepped}

    def render(self) -> tuple[np.ndarray, ...] | None:
        """The N predicted frames, a tuple of uint8 ``(H, W, 3)`` arrays as Gymnasium's vector envs return
        (its vector ``RecordVideo`` takes them); ``None`` (with a warning) without ``render_mode="rgb_array"``."""
        if self.render_mode is None:
            gym.logger.warn("render() needs render_mode='rgb_array', e.g. gym.make_vec('DreamSim-v0', render_mode='rgb_array')")
            return None
        return tuple(self.sim.render().cpu().numpy())
