"""A small world with known answers: a bright square that jumps where the action sends it.

``s' = a`` on a 2-D position in [-1, 1]; the frame draws the square at ``s``; the reward is
``-|s' - GOAL|``. Copying the last observation is a poor predictor here (the square jumps every
step), and the best action is ``GOAL`` in every state. ``DotEnv`` is the world's "real" Gymnasium
twin (registered as ``DotWorld-v0``), and ``DOT_TASK`` its task card.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from dreamsim.data.store import Episode
from dreamsim.tasks import Camera, Task

SIZE = 16
GOAL = np.array([0.5, -0.25])
DOT_TASK = Task(
    name="dot", title="Dot", gym_id="DotWorld-v0", frame_size=SIZE, action_repeat=1, episode_length=20,
    model_preset="tiny", camera=Camera(1.0, 0.0, 0.0, (0.0, 0.0, 0.0)), horizons=(1, 5),
)  # fmt: skip


def reward(pos: np.ndarray) -> float:
    return -float(np.linalg.norm(pos - GOAL))


def _frame(pos: np.ndarray) -> np.ndarray:
    frame = np.full((SIZE, SIZE, 3), 40, np.uint8)
    cx, cy = ((pos + 1) / 2 * (SIZE - 4) + 2).astype(int)
    frame[cy - 2 : cy + 2, cx - 2 : cx + 2] = (240, 200, 60)
    return frame


def dot_episode(rng: np.random.Generator, steps: int = 20) -> Episode:
    pos = rng.uniform(-1, 1, 2)
    states, frames, actions = [pos.copy()], [_frame(pos)], []
    for _ in range(steps):
        a = rng.uniform(-1, 1, 2)
        pos = a.copy()
        states.append(pos.copy())
        frames.append(_frame(pos))
        actions.append(a)
    return Episode(
        frames=np.stack(frames),
        obs=np.stack(states).astype(np.float32),
        actions=np.stack(actions).astype(np.float32),
        rewards=np.array([reward(p) for p in states[1:]], np.float32),
        terminated=np.zeros(steps, bool),
        truncated=np.eye(1, steps, steps - 1, dtype=bool)[0],
        qpos=np.stack(states),
        qvel=np.zeros((steps + 1, 2)),
    )


class DotEnv(gym.Env):
    """The square world as a Gymnasium env (accepts and ignores ``make_real``'s MuJoCo options)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, **_: Any):
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-1, 1, 2)
        return self.pos.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.pos = np.clip(np.asarray(action, np.float64), -1, 1)
        return self.pos.astype(np.float32), reward(self.pos), False, False, {}

    def render(self) -> np.ndarray:
        return _frame(self.pos)


if "DotWorld-v0" not in gym.registry:
    gym.register("DotWorld-v0", entry_point=DotEnv)
