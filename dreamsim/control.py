"""Agents acting in the real MuJoCo twin, and the episode loop that scores them.

An agent is anything with ``needs_frames``, ``reset(env)`` and ``act(obs, frame) -> action``:
``RandomAgent`` and ``ConstantAgent`` (floors), ``PolicyAgent`` (an SB3 policy), the planners' ``MPCAgent``.
``evaluate`` runs one for whole real episodes and reports returns with a 95% CI. An agent may also
have ``executed(action)``: a caller that changes the action (exploration noise) reports what ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from dreamsim.stats import mean_ci95
from dreamsim.tasks import Task, load_task, make_real


class Agent(Protocol):
    needs_frames: bool  # whether ``act`` needs the rendered frame

    def reset(self, env: gym.Env) -> None: ...

    def act(self, obs: np.ndarray, frame: np.ndarray | None) -> np.ndarray: ...


class PolicyAgent:
    """An SB3 model (anything with ``predict(obs, deterministic=...)`` and an ``observation_space``)
    trained on DreamSim's ``state``, ``pixels`` or ``dict`` observations: it is given what it saw."""

    def __init__(self, model: Any, deterministic: bool = True):
        self.model = model
        self.deterministic = deterministic
        self.obs_mode = policy_obs_mode(model.observation_space)
        self.needs_frames = self.obs_mode != "state"

    def reset(self, env: gym.Env) -> None:
        pass

    def act(self, obs: np.ndarray, frame: np.ndarray | None) -> np.ndarray:
        if self.obs_mode == "pixels":
            seen: Any = frame
        elif self.obs_mode == "dict":
            seen = {"state": obs, "pixels": frame}
        else:
            seen = obs
        action, _ = self.model.predict(seen, deterministic=self.deterministic)
        return np.asarray(action)


def frame_for(agent: Agent, env: gym.Env) -> np.ndarray | None:
    """The frame ``agent.act`` takes: ``env``'s current one if the agent looks at frames, else ``None``."""
    return np.asarray(env.render()) if agent.needs_frames else None


def policy_obs_mode(space: gym.Space) -> str:
    """Which of DreamSim's observation modes a policy's observation space is: an image (SB3 may have
    moved its channels first), a dict, or else the state."""
    from stable_baselines3.common.preprocessing import is_image_space

    if isinstance(space, gym.spaces.Dict):
        return "dict"
    return "pixels" if is_image_space(space, check_channels=False) else "state"


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


class ConstantAgent:
    """The same action every step; by default the middle of the box (zero torque for most tasks)."""

    needs_frames = False

    def __init__(self, action_space: gym.spaces.Box, action: np.ndarray | None = None):
        middle = (action_space.low + action_space.high) / 2
        self.action = np.asarray(middle if action is None else action, dtype=action_space.dtype)

    def reset(self, env: gym.Env) -> None:
        pass

    def act(self, obs: np.ndarray, frame: np.ndarray | None) -> np.ndarray:
        return self.action.copy()


def evaluate(
    task: str | Task,
    agent: Agent,
    episodes: int = 5,
    seed: int = 0,
    max_steps: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``agent`` for ``episodes`` real episodes (seeds ``seed, seed + 1, ...``); ``max_steps`` caps
    an episode's length. Returns the returns, their mean and 95% CI, and milliseconds per action."""
    card = load_task(task)
    returns, lengths, think = [], [], []
    with make_real(card, render=agent.needs_frames) as env:  # closed on an error too
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            agent.reset(env)
            total, steps, done = 0.0, 0, False
            while not done and (max_steps is None or steps < max_steps):
                frame = frame_for(agent, env)
                start = time.perf_counter()
                action = agent.act(obs, frame)
                think.append(time.perf_counter() - start)
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                steps += 1
                done = terminated or truncated
            returns.append(total)
            lengths.append(steps)
            if progress is not None:
                progress(f"episode {episode + 1}/{episodes}: return {total:.2f} over {steps} steps")
    mean, ci = mean_ci95(returns)
    return {
        "returns": returns,
        "lengths": lengths,
        "return_mean": mean,
        "return_ci95": ci,
        "ms_per_action": 1000.0 * float(np.mean(think)),
    }
