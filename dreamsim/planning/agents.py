"""Agents that act in the real MuJoCo twin, and the episode loop that scores them.

``MPCAgent`` plans in the learned model: it filters each real observation (state and frame) through
the world model's posterior to get the current latent, plans from it and executes the first action.
``TrueSimMPCAgent`` plans with MuJoCo itself from the real physics state (the ceiling);
``RandomAgent`` is the floor. ``evaluate`` runs any of them for whole episodes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch

from dreamsim.model.world_model import WorldModel
from dreamsim.planning.objectives import Latent, LatentObjective, MujocoObjective, physics_state
from dreamsim.planning.planner import Planner, PlannerConfig
from dreamsim.stats import mean_ci95
from dreamsim.tasks import Task, load_task, make_real


class Agent(Protocol):
    needs_frames: bool  # whether ``act`` needs the rendered frame

    def reset(self, env: gym.Env) -> None: ...

    def act(self, obs: np.ndarray, frame: np.ndarray | None) -> np.ndarray: ...


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

    @torch.inference_mode()
    def observe(self, obs: np.ndarray, frame: np.ndarray) -> Latent:
        """Fold one real observation into the current latent (the posterior after the last action)."""
        model = self.model
        states = torch.as_tensor(np.asarray(obs, np.float32), device=self.device)[None]
        frames = torch.as_tensor(np.ascontiguousarray(frame), device=self.device)[None]
        if self._latent is None or self._last_action is None:
            deter, _ = model.rssm.initial(1, self.device)
        else:
            deter = model.rssm.step_deter(self._latent.deter, self._latent.stoch, self._last_action[None])
        shape = (1, model.cfg.stoch, model.cfg.classes)
        uniform = torch.rand(shape, generator=self.planner.generator, device=self.device)
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


class RandomAgent:
    """Uniform random actions from the action space."""

    needs_frames = False

    def __init__(self, action_space: gym.spaces.Box, seed: int = 0):
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def reset(self, env: gym.Env) -> None:
        pass

    def act(self, obs: np.ndarray, frame: np.ndarray | None) -> np.ndarray:
        space = self.action_space
        return self.rng.uniform(space.low, space.high).astype(space.dtype)


def evaluate(
    task: str | Task, agent: Agent, episodes: int = 5, seed: int = 0, max_steps: int | None = None, progress: bool = False
) -> dict[str, Any]:
    """Run ``agent`` for ``episodes`` real episodes (seeds ``seed, seed + 1, ...``); ``max_steps`` caps
    an episode's length. Returns the returns, their mean and 95% CI, and milliseconds per action."""
    card = load_task(task)
    env = make_real(card, render=agent.needs_frames)
    returns, lengths, think = [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        agent.reset(env)
        total, steps, done = 0.0, 0, False
        while not done and (max_steps is None or steps < max_steps):
            frame = np.asarray(env.render()) if agent.needs_frames else None
            start = time.perf_counter()
            action = agent.act(obs, frame)
            think.append(time.perf_counter() - start)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
        if progress:
            print(f"  episode {episode + 1}/{episodes}: return {total:.2f} over {steps} steps", flush=True)
    env.close()
    mean, ci = mean_ci95(returns)
    return {
        "returns": returns,
        "lengths": lengths,
        "return_mean": mean,
        "return_ci95": ci,
        "ms_per_action": 1000.0 * float(np.mean(think)),
    }
