"""``DreamSimEnv``: the Gymnasium view (``N = 1``) of the batched learned simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dreamsim.sim.batch import BatchSim


class DreamSimEnv(gym.Env):
    """A MuJoCo task simulated by a learned world model.

    Args:
        task: task card name (``dreamsim.list_tasks()``).
        checkpoint: checkpoint folder; the task's shipped one when ``None``.
        obs_mode: ``state`` (the real env's Box), ``pixels`` (uint8 HxWx3), ``latent`` or ``dict``.
        device: ``auto`` (GPU when present), ``cpu`` or ``cuda``.
        render_mode: ``rgb_array`` (``render()`` returns the predicted frame) or ``None``.

    ``reset(options={"obs": ..., "frame": ...})`` starts from a given real observation (state and
    uint8 frame); otherwise from a real start state shipped with the checkpoint. ``info`` of
    ``step()`` holds ``disagreement``, the spread of the model's ensemble (higher: less certain).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: str = "reacher",
        checkpoint: str | Path | None = None,
        obs_mode: str = "state",
        device: str = "auto",
        render_mode: str | None = None,
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}: use 'rgb_array' or None")
        self.sim = BatchSim(task, 1, checkpoint, obs_mode, device)
        self.task = self.sim.task
        self.checkpoint = self.sim.checkpoint
        self.observation_space = self.sim.observation_space
        self.action_space = self.sim.action_space
        self.render_mode = render_mode

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.sim.rngs[0] = self.np_random  # one generator: Gymnasium's, drawn from as the vector env draws
        context = self._context(options) if options and ("obs" in options or "frame" in options) else None
        return self._first(self.sim.to_numpy(self.sim.reset(context=context))), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        act = np.asarray(action, dtype=np.float32)
        if act.shape != self.action_space.shape:
            raise ValueError(f"action has shape {act.shape}, expected {self.action_space.shape} for {self.task.gym_id}")
        if not np.isfinite(act).all():
            raise ValueError(f"action contains NaN or inf: {act}; pass finite values within {self.action_space}")
        obs, reward, terminated, truncated, info = self.sim.step(torch.from_numpy(act)[None])
        assert self.sim.state is not None
        return (
            self._first(self.sim.to_numpy(obs)),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            {"disagreement": float(info["disagreement"][0]), "step": int(self.sim.state.t[0])},
        )

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        return self.sim.render()[0].cpu().numpy()

    def _context(self, options: dict[str, Any]) -> dict[str, np.ndarray]:
        if "obs" not in options or "frame" not in options:
            raise ValueError("reset options need both 'obs' (real state observation) and 'frame' (uint8 HxWx3)")
        obs = np.asarray(options["obs"], dtype=np.float32)
        frame = np.ascontiguousarray(options["frame"])
        size = self.task.frame_size
        if obs.shape != self.sim.state_space.shape:
            raise ValueError(f"reset option 'obs' has shape {obs.shape}, expected {self.sim.state_space.shape}")
        if frame.shape != (size, size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"reset option 'frame' must be uint8 ({size}, {size}, 3), got {frame.dtype} {frame.shape}")
        return {"obs": obs[None], "frame": frame[None]}

    @staticmethod
    def _first(obs: Any) -> Any:
        return {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]
