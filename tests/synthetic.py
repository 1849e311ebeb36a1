"""A small world with a known answer: a bright square that jumps where the action sends it.

``s' = a`` on a 2-D position in [-1, 1]; the frame draws the square at ``s``. Copying the
last observation is a poor predictor here (the square jumps every step); a model that learns the
dynamics is much better.
"""

from __future__ import annotations

import numpy as np

from dreamsim.data.store import Episode

SIZE = 16


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
        rewards=-np.linalg.norm(np.stack(states[1:]), axis=1).astype(np.float32),
        terminated=np.zeros(steps, bool),
        truncated=np.eye(1, steps, steps - 1, dtype=bool)[0],
        qpos=np.stack(states),
        qvel=np.zeros((steps + 1, 2)),
    )
