"""``BatchSim``: N learned-simulator envs on one device, as torch tensors (no host copies).

It owns what every view of the core needs: the checkpoint, the spaces copied from the real twin,
the real start states, per-env random generators (seeded like Gymnasium's ``np_random``) and
partial resets. The Gymnasium ``Env`` (N = 1), the ``VectorEnv`` and the SB3 ``VecEnv`` are thin
numpy views of it; torch-native agents and planners use it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.utils import seeding

from dreamsim.device import resolve_device
from dreamsim.model.checkpoint import Checkpoint, load_checkpoint
from dreamsim.resources import assets_dir
from dreamsim.sim.core import OBS_MODES, DreamCore, SimState
from dreamsim.tasks import Task, load_task, make_real


def load_for_task(task: Task, checkpoint: str | Path | None, device: torch.device) -> Checkpoint:
    """Load ``checkpoint`` (or the task's shipped one in ``assets/<task>``), checking its task."""
    path = Path(checkpoint) if checkpoint is not None else assets_dir() / task.name
    if checkpoint is None and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no shipped checkpoint for task {task.name!r} (looked in {path}): train one with "
            f"`dreamsim collect {task.name}` and `dreamsim train {task.name}`, then pass "
            f"checkpoint='runs/{task.name}/checkpoint'"
        )
    return load_checkpoint(path, device, task=task.name)


def _observation_space(obs_mode: str, state_space: spaces.Box, frame_size: int, latent_dim: int) -> spaces.Space:
    pixels = spaces.Box(0, 255, (frame_size, frame_size, 3), np.uint8)
    if obs_mode == "state":
        return state_space
    if obs_mode == "pixels":
        return pixels
    if obs_mode == "latent":
        return spaces.Box(-np.inf, np.inf, (latent_dim,), np.float32)
    return spaces.Dict({"state": state_space, "pixels": pixels})


class BatchSim:
    """``num_envs`` DreamSim envs of ``task``; see the module doc. Shapes: actions ``(N, A)``."""

    def __init__(
        self,
        task: str = "reacher",
        num_envs: int = 1,
        checkpoint: str | Path | None = None,
        obs_mode: str = "state",
        device: str | torch.device = "auto",
    ):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"unknown obs_mode {obs_mode!r}: choose one of {OBS_MODES}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.task = load_task(task)
        self.num_envs = num_envs
        self.obs_mode = obs_mode
        self.device = resolve_device(device)
        ckpt = load_for_task(self.task, checkpoint, self.device)
        self.checkpoint = ckpt.path
        real = make_real(self.task, render=False)
        self.state_space: spaces.Box = real.observation_space  # type: ignore[assignment]
        self.action_space: spaces.Box = real.action_space  # type: ignore[assignment]
        real.close()
        cfg = ckpt.model.cfg
        if self.state_space.shape != (cfg.state_dim,) or self.action_space.shape != (cfg.action_dim,):
            raise ValueError(
                f"checkpoint {ckpt.path} models state {cfg.state_dim} / action {cfg.action_dim}, but {self.task.gym_id} "
                f"has {self.state_space.shape} / {self.action_space.shape}: wrong checkpoint for this task"
            )
        self.observation_space = _observation_space(obs_mode, self.state_space, cfg.frame_size, cfg.latent_dim)
        self.core = DreamCore(
            ckpt.model,
            self.task.episode_length,
            torch.as_tensor(self.action_space.low),
            torch.as_tensor(self.action_space.high),
            obs_mode,
        )
        self.start_obs = torch.as_tensor(ckpt.start_states["obs"], device=self.device)
        self.start_frames = torch.as_tensor(ckpt.start_states["frames"], device=self.device)
        self.rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self.state: SimState | None = None

    def seed(self, seeds: Sequence[int | None]) -> None:
        """Re-seed each env's generator (Gymnasium's ``np_random``); ``None`` keeps an env's."""
        for i, s in enumerate(seeds):
            if s is not None:
                self.rngs[i] = seeding.np_random(s)[0]

    def reset(self, envs: Sequence[int] | None = None, context: dict[str, Any] | None = None) -> Any:
        """Start new episodes in ``envs`` (all when ``None``); returns their observations (rows in
        the order of ``envs``).

        Each env draws its start state and noise seed from its own generator, in that order. A
        ``context`` (``obs (n, D)``, uint8 ``frame (n, H, W, 3)``) replaces the drawn start states.
        """
        index = list(range(self.num_envs)) if envs is None else list(envs)
        if not index:
            raise ValueError("reset() needs at least one env index")
        starts = [int(self.rngs[i].integers(len(self.start_obs))) for i in index]
        noise = torch.tensor([int(self.rngs[i].integers(2**31)) for i in index], dtype=torch.int64)
        if context is not None:
            frames = torch.as_tensor(np.ascontiguousarray(context["frame"]), device=self.device).reshape(
                len(index), *self.start_frames.shape[1:]
            )
            obs = torch.as_tensor(np.asarray(context["obs"], np.float32), device=self.device).reshape(len(index), -1)
        else:
            frames, obs = self.start_frames[starts], self.start_obs[starts]
        new = self.core.initial(frames, obs, noise)
        if self.state is None or len(index) == self.num_envs:
            self.state = new if len(index) == self.num_envs else self._full(new, index)
        else:
            where = torch.as_tensor(index, device=self.device)
            self.state = SimState(
                deter=self.state.deter.index_copy(0, where, new.deter),
                stoch=self.state.stoch.index_copy(0, where, new.stoch),
                t=self.state.t.index_copy(0, where, new.t),
                seed=self.state.seed.index_copy(0, where, new.seed),
            )
        return self.core.observe(new)

    def step(self, actions: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance all envs by ``actions (N, A)``; returns device tensors (obs, reward, terminated,
        truncated, info). No autoreset: the views decide how to reset finished envs."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        if actions.shape != (self.num_envs, *self.action_space.shape):
            raise ValueError(f"actions have shape {tuple(actions.shape)}, expected {(self.num_envs, *self.action_space.shape)}")
        if not bool(torch.isfinite(actions).all()):
            raise ValueError(f"actions contain NaN or inf; pass finite values within {self.action_space}")
        self.state, obs, reward, terminated, truncated, info = self.core.transition(self.state, actions)
        return obs, reward, terminated, truncated, info

    def observe(self) -> Any:
        if self.state is None:
            raise RuntimeError("call reset() first")
        return self.core.observe(self.state)

    def render(self) -> torch.Tensor:
        """Predicted uint8 frames ``(N, H, W, 3)``."""
        if self.state is None:
            raise RuntimeError("call reset() before render()")
        return self.core.render(self.state)

    def to_numpy(self, obs: Any) -> Any:
        """Host copy of a batch observation, with the observation space's dtypes."""
        if isinstance(obs, dict):
            return {k: self._host(v, k) for k, v in obs.items()}
        return self._host(obs, self.obs_mode)

    def _host(self, value: torch.Tensor, key: str) -> np.ndarray:
        array = value.cpu().numpy()
        return array.astype(self.state_space.dtype) if key == "state" else array

    def _full(self, new: SimState, index: list[int]) -> SimState:
        """A full-batch state from a partial one (first reset of a subset): other envs start zeroed."""
        n, where = self.num_envs, torch.as_tensor(index, device=self.device)

        def put(x: torch.Tensor) -> torch.Tensor:
            return torch.zeros((n, *x.shape[1:]), dtype=x.dtype, device=x.device).index_copy(0, where, x)

        return replace(new, deter=put(new.deter), stoch=put(new.stoch), t=put(new.t), seed=put(new.seed))
