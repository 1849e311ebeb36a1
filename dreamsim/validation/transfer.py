"""Transfer gap: one agent's return in DreamSim and in MuJoCo, episode by episode from the same start.

Episode ``i`` resets MuJoCo with seed ``seed + i`` and hands DreamSim that real first observation and
frame, so each pair of episodes starts in the same state. The gap is DreamSim's return minus MuJoCo's,
averaged over the pairs with a 95% CI; a positive gap means the learned world flatters the agent.
A random agent draws fresh actions in each world, so its pairs share the start state alone and its
gap's CI is wider than a deterministic policy's.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dreamsim.control import Agent, frame_for
from dreamsim.sim.env import DreamSimEnv
from dreamsim.stats import mean_ci95
from dreamsim.tasks import Task, make_real


def _episode(env: gym.Env, agent: Agent, obs: np.ndarray) -> float:
    agent.reset(env)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs, frame_for(agent, env)))  # DreamSim's frames are predicted
        total += float(reward)
        done = terminated or truncated
    return total


def transfer_gap(
    task: Task,
    agents: dict[str, Agent],
    episodes: int = 10,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    device: str = "auto",
) -> dict[str, dict[str, Any]]:
    """For each named agent: its returns in both worlds over ``episodes`` paired episodes, their means
    and 95% CIs, and the paired gap (DreamSim - MuJoCo)."""
    if episodes < 2:
        raise ValueError(f"a confidence interval needs at least 2 episodes, got {episodes}")
    # Both closed on errors too, the real one also when the learned one cannot be made.
    with (
        closing(make_real(task)) as real,
        closing(DreamSimEnv(task.name, checkpoint=checkpoint, device=device, render_mode="rgb_array")) as dream,
    ):
        result: dict[str, dict[str, Any]] = {}
        for name, agent in agents.items():
            real_returns, dream_returns = [], []
            for i in range(episodes):
                obs, _ = real.reset(seed=seed + i)
                dream_obs, _ = dream.reset(seed=seed + i, options={"obs": obs, "frame": np.asarray(real.render())})
                real_returns.append(_episode(real, agent, obs))
                dream_returns.append(_episode(dream, agent, dream_obs))
            (real_mean, real_ci), (dream_mean, dream_ci) = mean_ci95(real_returns), mean_ci95(dream_returns)
            gap, gap_ci = mean_ci95(np.subtract(dream_returns, real_returns).tolist())
            result[name] = {
                "real_returns": real_returns,
                "dream_returns": dream_returns,
                "real_mean": real_mean,
                "real_ci95": real_ci,
                "dream_mean": dream_mean,
                "dream_ci95": dream_ci,
                "gap_mean": gap,
                "gap_ci95": gap_ci,
            }
    return result
