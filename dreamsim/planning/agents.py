"""Planning agents for the real MuJoCo twin (``dreamsim.control.evaluate`` scores them).

``MPCAgent`` plans in the learned model: it filters each real observation (state and frame) through
the world model's posterior to get the current latent, plans from it and executes the first action.
``TrueSimMPCAgent`` plans with MuJoCo itself from the real physics state: the ceiling.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from dreamsim.model.world_model import WorldModel
from dreamsim.planning.objectives import Latent, LatentObjective, MujocoObjective, physics_state
from dreamsim.planning.planner import Planner, PlannerConfig
from dreamsim.tasks import Task, load_task


class MPCAgent:
    """Latent MPC on a world model; ``reset`` at each episode start, then ``act`` on each real step."""

    needs_frames = True

    def __init__(
        self,
        model: WorldModel,
        action_space: gym.spaces.Box,
        config: PlannerConfig,
        seed: int = 0,
        value: Callable[[torch.Tensor], torch.Tensor] | None = None,
        policy: Callable[..., torch.Tensor] | None = None,
    ):
        self.model = model.eval()
        self.action_space = action_space
        objective = LatentObjective(model, torch.as_tensor(action_space.low), torch.as_tensor(action_space.high), value)
        self.planner = Planner(objective, config, seed, policy)
        self.device = objective.device
        self._latent: Latent | None = None
        self._last_action: torch.Tensor | None = None

    def reset(self, env: gym.Env | None = None) -> None:
        self.planner.reset()
        self._latent, self._last_action = None, None

    def executed(self, action: np.ndarray) -> None:
        """The action the env ran, when the caller changed the planned one (exploration noise): the
        next latent must follow what happened, not what was planned."""
        self._last_action = torch.as_tensor(np.asarray(action, np.float32), device=self.device)

    @torch.inference_mode()
    def observe(self, obs: np.ndarray, frame: np.ndarray) -> Latent:
        """Fold one real observation into the current latent (the posterior after the last action)."""
        model = self.model
        obs, frame = np.asarray(obs, np.float32), np.asarray(frame)
        size, dim = model.cfg.frame_size, model.cfg.state_dim
        if obs.shape != (dim,) or not np.isfinite(obs).all():
            raise ValueError(f"MPCAgent needs a finite state observation of shape ({dim},), got {obs.shape} {obs}")
        if frame.shape != (size, size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"MPCAgent needs a uint8 frame of shape ({size}, {size}, 3), got {frame.dtype} {frame.shape}")
        states = torch.as_tensor(obs, device=self.device)[None]
        frames = torch.as_tensor(np.ascontiguousarray(frame), device=self.device)[None]
        shape = (1, model.cfg.stoch, model.cfg.classes)
        uniform = torch.rand(shape, generator=self.planner.generator, device=self.device)
        if self._latent is None or self._last_action is None:
            self._latent = Latent(*model.initial(frames, states, uniform))
        else:
            deter = model.rssm.step_deter(self._latent.deter, self._latent.stoch, self._last_action[None])
            self._latent = Latent(deter, model.posterior(deter, frames, states, uniform))
        return self._latent

    def act(self, obs: np.ndarray, frame: np.ndarray | None) -> np.ndarray:
        if frame is None:
            raise ValueError("MPCAgent needs the real frame: render the env with render_mode='rgb_array'")
        action = self.planner.plan(self.observe(obs, frame))
        self._last_action = action
        return action.cpu().numpy().astype(self.action_space.dtype)


class TrueSimMPCAgent:
    """The same planner with MuJoCo as the model, planning from the acting env's physics state."""

    needs_frames = False

    def __init__(self, task: str | Task, config: PlannerConfig, seed: int = 0):
        self.objective = MujocoObjective(load_task(task).name)
        self.planner = Planner(self.objective, config, seed)
        self._env: gym.Env | None = None

    def reset(self, env: gym.Env) -> None:
        self.planner.reset()
        self._env = env

    def act(self, obs: np.ndarray, frame: np.ndarray | None) -> np.ndarray:
        if self._env is None:
            raise RuntimeError("call reset(env) before act()")
        return self.planner.plan(physics_state(self._env)).numpy().astype(np.float32)

    def close(self) -> None:
        """Close the MuJoCo env the planner steps."""
        self.objective.close()
