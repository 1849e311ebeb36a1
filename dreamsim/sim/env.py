"""``DreamSimEnv``: the Gymnasium view (``N = 1``) of the batched learned simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from dreamsim.device import resolve_device
from dreamsim.model.checkpoint import Checkpoint, load_checkpoint
from dreamsim.resources import assets_dir
from dreamsim.sim.core import OBS_MODES, DreamCore, SimState
from dreamsim.tasks import Task, load_task, make_real


def default_checkpoint(task: Task) -> Path:
    """The shipped checkpoint folder of ``task``."""
    return assets_dir() / task.name


def load_for_task(task: Task, checkpoint: str | Path | None, device: torch.device) -> Checkpoint:
    """Load ``checkpoint`` (or the task's shipped one), checking it was trained for ``task``."""
    path = Path(checkpoint) if checkpoint is not None else default_checkpoint(task)
    if checkpoint is None and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no shipped checkpoint for task {task.name!r} (looked in {path}): train one with "
            f"`dreamsim collect {task.name}` and `dreamsim train {task.name}`, then pass "
            f"checkpoint='runs/{task.name}/checkpoint'"
        )
    return load_checkpoint(path, device, task=task.name)


def real_spaces(task: Task) -> tuple[spaces.Box, spaces.Box]:
    """Observation and action spaces of the real MuJoCo twin."""
    real = make_real(task, render=False)
    try:
        return real.observation_space, real.action_space  # type: ignore[return-value]
    finally:
        real.close()


def observation_space(obs_mode: str, state_space: spaces.Box, frame_size: int, latent_dim: int) -> spaces.Space:
    pixels = spaces.Box(0, 255, (frame_size, frame_size, 3), np.uint8)
    if obs_mode == "state":
        return state_space
    if obs_mode == "pixels":
        return pixels
    if obs_mode == "latent":
        return spaces.Box(-np.inf, np.inf, (latent_dim,), np.float32)
    return spaces.Dict({"state": state_space, "pixels": pixels})


class DreamSimEnv(gym.Env):
    """A MuJoCo task simulated by a learned world model.

    Args:
        task: task card name (``dreamsim.list_tasks()``).
        checkpoint: checkpoint folder; the task's shipped one when ``None``.
        obs_mode: ``state`` (the real env's Box), ``pixels`` (uint8 HxWx3), ``latent`` or ``dict``.
        device: ``auto`` (GPU when present), ``cpu`` or ``cuda``.
        render_mode: ``rgb_array`` (``render()`` returns the predicted frame) or ``None``.

    ``reset(options={"obs": ..., "frame": ...})`` starts from a given real observation (state and
    uint8 frame); otherwise from a real start state shipped with the checkpoint.
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
        if obs_mode not in OBS_MODES:
            raise ValueError(f"unknown obs_mode {obs_mode!r}: choose one of {OBS_MODES}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unsupported render_mode {render_mode!r}: use 'rgb_array' or None")
        self.task = load_task(task)
        self.device = resolve_device(device)
        ckpt = load_for_task(self.task, checkpoint, self.device)
        self.checkpoint = ckpt.path
        self.start_states = ckpt.start_states
        state_space, self.action_space = real_spaces(self.task)
        cfg = ckpt.model.cfg
        if state_space.shape != (cfg.state_dim,) or self.action_space.shape != (cfg.action_dim,):
            raise ValueError(
                f"checkpoint {ckpt.path} models state {cfg.state_dim} / action {cfg.action_dim}, but "
                f"{self.task.gym_id} has {state_space.shape} / {self.action_space.shape}: wrong checkpoint for this task"
            )
        self.state_space = state_space
        self.observation_space = observation_space(obs_mode, state_space, cfg.frame_size, cfg.latent_dim)
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        self.core = DreamCore(
            ckpt.model,
            self.task.episode_length,
            torch.as_tensor(self.action_space.low),
            torch.as_tensor(self.action_space.high),
            obs_mode,
        )
        self._state: SimState | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        if "obs" in options or "frame" in options:
            obs, frame = self._context(options)
        else:
            i = int(self.np_random.integers(len(self.start_states["obs"])))
            obs, frame = self.start_states["obs"][i], self.start_states["frames"][i]
        noise_seed = torch.tensor([int(self.np_random.integers(2**31))])
        self._state = self.core.initial(torch.as_tensor(frame)[None], torch.as_tensor(obs)[None], noise_seed)
        return self._to_numpy(self.core.observe(self._state)), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        act = np.asarray(action, dtype=np.float32)
        if act.shape != self.action_space.shape:
            raise ValueError(f"action has shape {act.shape}, expected {self.action_space.shape} for {self.task.gym_id}")
        if not np.isfinite(act).all():
            raise ValueError(f"action contains NaN or inf: {act}; pass finite values within {self.action_space}")
        self._state, obs, reward, terminated, truncated, info = self.core.transition(self._state, torch.from_numpy(act)[None])
        return (
            self._to_numpy(obs),
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            {"disagreement": float(info["disagreement"][0]), "step": int(self._state.t[0])},
        )

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        return self.core.render(self._state)[0].cpu().numpy()

    def _context(self, options: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        if "obs" not in options or "frame" not in options:
            raise ValueError("reset options need both 'obs' (real state observation) and 'frame' (uint8 HxWx3)")
        obs = np.asarray(options["obs"], dtype=np.float32)
        frame = np.ascontiguousarray(options["frame"])
        size = self.task.frame_size
        if obs.shape != self.state_space.shape:
            raise ValueError(f"reset option 'obs' has shape {obs.shape}, expected {self.state_space.shape}")
        if frame.shape != (size, size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"reset option 'frame' must be uint8 ({size}, {size}, 3), got {frame.dtype} {frame.shape}")
        return obs, frame

    def _to_numpy(self, obs: Any) -> Any:
        if isinstance(obs, dict):
            return {k: self._to_numpy_one(k, v) for k, v in obs.items()}
        return self._to_numpy_one(self.obs_mode, obs)

    def _to_numpy_one(self, key: str, value: torch.Tensor) -> np.ndarray:
        space = self.state_space if key == "state" else None
        array = value[0].cpu().numpy()
        return array.astype(space.dtype) if space is not None else array
