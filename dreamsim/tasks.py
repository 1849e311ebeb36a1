"""Task cards: ``envs/<task>.toml`` read into frozen dataclasses, and the real MuJoCo twin.

``make_real(task)`` builds the Gymnasium MuJoCo env that a card describes (camera, frame size,
action repeat, episode length): the ground truth that DreamSim learns from and is judged against.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dreamsim.resources import cards_dir

DEFAULT_TASK = "reacher"  # the task of `DreamSim-v0` and of every command given none


@dataclass(frozen=True)
class Camera:
    """The view frames are rendered from: a camera of the MuJoCo model by ``name`` (a ``trackcom``
    one, such as the ``track`` camera of Hopper and HalfCheetah, follows the body), or else the
    renderer's free camera at a fixed pose (Gymnasium's ``default_camera_config``)."""

    distance: float = 0.0
    elevation: float = 0.0
    azimuth: float = 0.0
    lookat: tuple[float, float, float] = (0.0, 0.0, 0.0)
    name: str | None = None

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a Gymnasium MuJoCo env that select this view."""
        if self.name is not None:
            return {"camera_name": self.name}
        pose = {"distance": self.distance, "elevation": self.elevation, "azimuth": self.azimuth}
        return {"default_camera_config": {**pose, "lookat": np.asarray(self.lookat, dtype=np.float64)}}


@dataclass(frozen=True)
class Task:
    """One task card. ``episode_length`` counts agent steps (after ``action_repeat``). The defaults
    below are those of a card that leaves the field out."""

    name: str
    title: str
    gym_id: str
    frame_size: int
    action_repeat: int
    episode_length: int
    model_preset: str
    camera: Camera
    shadows: bool = True
    reflections: bool = True
    joints: bool = False  # MuJoCo's joint markers drawn in the frames
    collect_policy: str = "random"
    collect_steps: int = 50_000
    horizons: tuple[int, ...] = (1, 5, 15, 50)
    # validate's checks at each horizon (dreamsim.validation.checks): DreamSim's state error at most
    # this times copy-last's, and its frame PSNR at least copy-last's plus this many dB.
    max_state_error_ratio: float = 0.75
    min_psnr_gain: float = 0.0
    card_path: Path = field(default=Path(), compare=False)


def list_tasks() -> list[str]:
    """Names of all task cards, sorted."""
    return sorted(p.stem for p in cards_dir().glob("*.toml"))


COLLECT_POLICIES = ("random", "mpc")
REAL_OBS_MODES = ("state", "pixels", "dict")  # DreamSim's, but "latent": the world model's own


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a positive integer, got {value!r}")
    return value


def _number(value: Any, key: str, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{key} must be a finite{' positive' if positive else ''} number, got {value!r}")
    return float(value)


def _flag(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def _table(raw: dict[str, Any], key: str, required: bool = False) -> dict[str, Any]:
    value = raw[key] if required else raw.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"[{key}] must be a table, got {value!r}")
    return value


def _camera(table: dict[str, Any]) -> Camera:
    """A card's ``[camera]``: ``name = "..."`` alone, or the free camera's four settings."""
    if "name" in table:
        if len(table) > 1:
            raise ValueError(f"[camera] sets a named camera and free-camera settings {sorted(set(table) - {'name'})}: keep one")
        return Camera(name=str(table["name"]))
    lookat = tuple(float(x) for x in table["lookat"])
    if len(lookat) != 3:
        raise ValueError(f"[camera] lookat must be a point [x, y, z], got {table['lookat']!r}")
    return Camera(
        distance=float(table["distance"]),
        elevation=float(table["elevation"]),
        azimuth=float(table["azimuth"]),
        lookat=lookat,  # type: ignore[arg-type]
    )


def load_task(task: str | Task) -> Task:
    """Read ``envs/<task>.toml``. Raises ``ValueError`` naming the known tasks if there is none, and
    naming the card and the field when a value is missing or out of range."""
    if isinstance(task, Task):
        return task
    path = cards_dir() / f"{task}.toml"
    if not path.is_file():
        raise ValueError(f"unknown task {task!r}: known tasks are {list_tasks()} (cards in {cards_dir()})")
    try:
        raw = tomllib.loads(path.read_text())
        if raw["name"] != path.stem:
            raise ValueError(f"name {raw['name']!r} differs from the file name: a card's name is its file's, {path.stem!r}")
        collect = _table(raw, "collect")
        policy = collect.get("policy", Task.collect_policy)
        if policy not in COLLECT_POLICIES:
            raise ValueError(f"[collect] policy must be one of {COLLECT_POLICIES}, got {policy!r}")
        checks = _table(raw, "validate")
        listed = checks.get("horizons", Task.horizons)
        horizons = tuple(_positive_int(h, "each validate horizon") for h in listed)
        if not horizons:
            raise ValueError("[validate] horizons must name at least one horizon")
        return Task(
            name=raw["name"],
            title=str(raw["title"]),
            gym_id=str(raw["gym_id"]),
            frame_size=_positive_int(raw["frame_size"], "frame_size"),
            action_repeat=_positive_int(raw["action_repeat"], "action_repeat"),
            episode_length=_positive_int(raw["episode_length"], "episode_length"),
            model_preset=str(raw["model_preset"]),
            camera=_camera(_table(raw, "camera", required=True)),
            shadows=_flag(raw, "shadows", Task.shadows),
            reflections=_flag(raw, "reflections", Task.reflections),
            joints=_flag(raw, "joints", Task.joints),
            collect_policy=policy,
            collect_steps=_positive_int(collect.get("steps", Task.collect_steps), "[collect] steps"),
            horizons=horizons,
            max_state_error_ratio=_number(
                checks.get("max_state_error_ratio", Task.max_state_error_ratio), "[validate] max_state_error_ratio", positive=True
            ),
            min_psnr_gain=_number(checks.get("min_psnr_gain", Task.min_psnr_gain), "[validate] min_psnr_gain"),
            card_path=path,
        )
    except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"task card {path} is malformed ({err}); compare it with envs/reacher.toml") from err


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``repeat`` times, summing rewards; stops early when the episode ends."""

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        self.repeat = repeat
        if "render_fps" in env.metadata:  # a step now spans `repeat` frames: videos play at real speed
            self.metadata = {**env.metadata, "render_fps": env.metadata["render_fps"] / repeat}

    def step(self, action):  # type: ignore[no-untyped-def]
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class ContiguousFrames(gym.Wrapper):
    """``render()`` as a contiguous array: MuJoCo's renderer flips its image with a negative stride,
    which torch (and so an SB3 policy given the frame) refuses."""

    def render(self):  # type: ignore[no-untyped-def]
        frame = self.env.render()
        return None if frame is None else np.ascontiguousarray(frame)


def make_real(task: str | Task, render: bool = True, obs_mode: str = "state") -> gym.Env:
    """The real MuJoCo env for ``task``: same spaces as DreamSim, frames from ``render()``.

    ``obs_mode`` as DreamSim's: ``"pixels"`` observes the rendered frame, ``"dict"`` both
    (``{"state", "pixels"}``), so a policy trained on either mode in DreamSim runs here unchanged.
    The caller chooses the GL backend through ``MUJOCO_GL`` (``egl`` for headless machines).
    """
    card = load_task(task)
    if obs_mode not in REAL_OBS_MODES:
        raise ValueError(
            f"obs_mode {obs_mode!r}: MuJoCo observes {REAL_OBS_MODES} (latent observations are the world model's own)"
        )
    if obs_mode != "state" and not render:
        raise ValueError(f"obs_mode {obs_mode!r} observes rendered frames: pass render=True")
    from mujoco import mjtVisFlag

    kwargs: dict[str, Any] = {
        **card.camera.env_kwargs(),
        "max_episode_steps": card.episode_length * card.action_repeat,
        "visual_options": {mjtVisFlag.mjVIS_JOINT: card.joints},
    }
    if render:
        kwargs.update(render_mode="rgb_array", width=card.frame_size, height=card.frame_size)
    env = gym.make(card.gym_id, **kwargs)
    if card.camera.name is not None:
        cameras = [env.unwrapped.model.camera(i).name for i in range(env.unwrapped.model.ncam)]  # type: ignore[attr-defined]
        if card.camera.name not in cameras:
            env.close()  # Gymnasium would fall back to the free camera without a word
            raise ValueError(f"{card.card_path}: {card.gym_id} has no camera {card.camera.name!r}; its cameras are {cameras}")
    # Gymnasium's `visual_options` writes mjvOption flags, not the scene's render flags, so it cannot
    # turn shadows or reflections off; the model's visual fields can (same frames, and physics untouched).
    if not card.shadows:
        env.unwrapped.model.light_castshadow[:] = 0  # type: ignore[attr-defined]
    if not card.reflections:
        env.unwrapped.model.mat_reflectance[:] = 0  # type: ignore[attr-defined]
    if card.action_repeat > 1:
        env = ActionRepeat(env, card.action_repeat)
    if render:
        env = ContiguousFrames(env)
    if obs_mode != "state":
        from gymnasium.wrappers import AddRenderObservation

        env = AddRenderObservation(env, render_only=obs_mode == "pixels", render_key="pixels", obs_key="state")
    return env


def real_spaces(task: str | Task) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """``(observation_space, action_space)`` of the real env, read from a MuJoCo env without a renderer."""
    env = make_real(task, render=False)
    spaces = env.observation_space, env.action_space
    env.close()
    return spaces  # type: ignore[return-value]
