"""``BatchSim``: N learned-simulator envs on one device, as torch tensors (no host copies).

It owns what every view of the core needs: the checkpoint, the spaces copied from the real twin,
the real start states, per-env seeds and partial resets. The Gymnasium ``Env`` (N = 1), the
``VectorEnv`` and the SB3 ``VecEnv`` are thin numpy views of it; torch-native agents and planners
use it directly. Each env draws its start state and noise seed from a hash of (its seed, its
episode count): resets are batched, and an env's episodes do not depend on the batch around it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from dreamsim.data import EpisodeStore
from dreamsim.device import resolve_device
from dreamsim.model.checkpoint import load_for_task
from dreamsim.sim.core import OBS_MODES, DreamCore, SimState, hash_bits
from dreamsim.tasks import DEFAULT_TASK, Task, load_task, make_real

_DRAW_SALT = 0x2545F491  # keeps start-state draws apart from the step noise of the same seed


def _seed31(seed: int) -> int:
    """The 31-bit seed the hash takes: seeds below 2**31 as they are, larger ones mixed down (not
    cut), so that seeds differing only in their high bits still differ."""
    if 0 <= seed < 2**31:
        return seed
    return int(np.random.SeedSequence(abs(seed)).generate_state(1)[0]) & 0x7FFFFFFF


def _observation_space(obs_mode: str, state_space: spaces.Box, frame_size: int, latent_dim: int) -> spaces.Space:
    pixels = spaces.Box(0, 255, (frame_size, frame_size, 3), np.uint8)
    if obs_mode == "state":
        return state_space
    if obs_mode == "pixels":
        return pixels
    if obs_mode == "latent":
        return spaces.Box(-np.inf, np.inf, (latent_dim,), np.float32)
    return spaces.Dict({"state": state_space, "pixels": pixels})


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def reset_context(options: dict[str, Any] | None, known: tuple[str, ...] = ("obs", "frame")) -> dict[str, Any] | None:
    """The start context (``obs``, ``frame``) in reset ``options``, or ``None``; warns of keys outside
    ``known``, which are ignored (a typo, or a dict observation passed whole)."""
    if not options:
        return None
    unknown = sorted(set(options) - set(known))
    if unknown:
        warnings.warn(f"reset options {unknown} are ignored: DreamSim takes {list(known)}", stacklevel=3)
    return {k: options[k] for k in ("obs", "frame") if k in options} or None


class BatchSim:
    """``num_envs`` DreamSim envs of ``task``; see the module doc. Shapes: actions ``(N, A)``.

    ``precision="bf16"`` runs the model's matmuls and convolutions in bfloat16 (faster where the
    hardware has bf16 units; predictions differ slightly from ``fp32``, the default).
    ``uncertainty_penalty`` subtracts that multiple of the ensemble's disagreement from every reward
    (as in MOPO), so that states the model is unsure of pay less.

    ``max_episode_steps`` overrides the card's episode length, and ``start_episodes`` (an episode
    folder) replaces the shipped start states with about ``MAX_STARTS`` observations drawn from
    anywhere in those real episodes. Together they give MBPO's branched rollouts: short imagined
    episodes that start from real states, so the model's error has few steps to compound and the
    agent sees the states its real data holds, not only the resets."""

    MAX_STARTS = 20_000  # start observations kept from ``start_episodes`` (about 12 KB each at 64x64)

    def __init__(
        self,
        task: str | Task = DEFAULT_TASK,
        num_envs: int = 1,
        checkpoint: str | Path | None = None,
        obs_mode: str = "state",
        device: str | torch.device = "auto",
        precision: str = "fp32",
        uncertainty_penalty: float = 0.0,
        max_episode_steps: int | None = None,
        start_episodes: str | Path | None = None,
    ):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"unknown obs_mode {obs_mode!r}: choose one of {OBS_MODES}")
        if not _is_int(num_envs) or num_envs < 1:
            raise ValueError(f"num_envs must be an int of at least 1, got {num_envs!r}")
        if not isinstance(uncertainty_penalty, (int, float, np.number)) or not uncertainty_penalty >= 0:
            raise ValueError(f"uncertainty_penalty must be a number >= 0, got {uncertainty_penalty!r}")
        if max_episode_steps is not None and (not _is_int(max_episode_steps) or max_episode_steps < 1):
            raise ValueError(
                f"max_episode_steps must be an int of at least 1 (or None for the card's length), got {max_episode_steps!r}"
            )
        self.uncertainty_penalty = float(uncertainty_penalty)
        self.task = load_task(task)
        self.num_envs = int(num_envs)
        self.obs_mode = obs_mode
        self.device = resolve_device(device)
        ckpt = load_for_task(self.task, checkpoint, self.device)
        self.checkpoint = ckpt.path
        real = make_real(self.task, render=False)
        self.state_space: spaces.Box = real.observation_space  # type: ignore[assignment]
        self.action_space: spaces.Box = real.action_space  # type: ignore[assignment]
        self.real_fps = float(real.metadata.get("render_fps", 20))  # per real step, action repeat included
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
            self.task.episode_length if max_episode_steps is None else max_episode_steps,
            torch.as_tensor(self.action_space.low),
            torch.as_tensor(self.action_space.high),
            obs_mode,
            precision,
        )
        starts = ckpt.start_states if start_episodes is None else EpisodeStore(start_episodes).observations(self.MAX_STARTS)
        try:
            context = {"obs": starts["obs"], "frame": starts["frames"]}
            self.start_obs, self.start_frames = self._context(context, len(starts["obs"]))
        except ValueError as err:
            source = start_episodes or ckpt.path
            raise ValueError(f"start states from {source} do not fit task {self.task.name!r}: {err}") from err
        entropy = np.random.SeedSequence().generate_state(num_envs).astype(np.int64)
        self.env_seeds = torch.as_tensor(entropy & 0x7FFFFFFF, device=self.device)  # unseeded: fresh entropy
        self.episodes = torch.zeros(num_envs, dtype=torch.int64, device=self.device)  # resets per env
        self.state: SimState | None = None

    def seed(self, seeds: Iterable[int | None]) -> None:
        """Seed each env (``None`` keeps an env's seed); the next reset is its first episode."""
        for i, s in enumerate(seeds):
            if s is not None:
                self.env_seeds[i] = _seed31(int(s))
                self.episodes[i] = 0

    def reset(
        self, envs: Iterable[int] | None = None, context: dict[str, Any] | None = None, seeds: Iterable[int | None] | None = None
    ) -> Any:
        """Start new episodes in ``envs`` (all when ``None``); returns their observations, rows in
        the order of ``envs``. ``context`` (``obs (n, D)``, uint8 ``frame (n, H, W, 3)``, or one
        ``(D,)`` and ``(H, W, 3)`` for all) starts them from given real observations instead of drawn
        start states. ``seeds``: one per env reset, as ``seed`` takes them. A reset refused for bad
        input changes nothing: its seeds and episode counts apply only once the input is checked."""
        index = list(range(self.num_envs)) if envs is None else list(envs)
        if not index:
            raise ValueError("reset() needs at least one env index")
        whole = index == list(range(self.num_envs))
        if not whole and self.state is None:
            raise RuntimeError("reset all envs once before resetting some of them")
        given = None if context is None else self._context(context, len(index))
        if seeds is not None:
            per_env: list[int | None] = [None] * self.num_envs
            for i, s in zip(index, seeds, strict=True):
                per_env[i] = s
            self.seed(per_env)
        where = torch.as_tensor(index, device=self.device)
        bits = hash_bits(self.env_seeds[where] ^ _DRAW_SALT, self.episodes[where], 2)
        self.episodes[where] += 1
        if given is not None:
            obs, frames = given
        else:
            start = bits[:, 0] % len(self.start_obs)
            obs, frames = self.start_obs[start], self.start_frames[start]
        new = self.core.initial(frames, obs, bits[:, 1])
        if whole or self.state is None:  # None only when whole (checked above)
            self.state = new
        else:
            old = self.state
            reference = old.reference
            if reference is not None and new.reference is not None:
                reference = reference.index_copy(0, where, new.reference)
            self.state = SimState(
                deter=old.deter.index_copy(0, where, new.deter),
                stoch=old.stoch.index_copy(0, where, new.stoch),
                t=old.t.index_copy(0, where, new.t),
                seed=old.seed.index_copy(0, where, new.seed),
                reference=reference,
            )
        return self.core.observe(new)

    def step(self, actions: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Advance all envs by ``actions (N, A)`` (clipped to the action space; values are not checked
        here, to keep the device free of syncs: the numpy views reject NaN). Returns device tensors
        ``(obs, reward, terminated, truncated, info)``; no autoreset: each view resets its own way."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        if not isinstance(actions, torch.Tensor):
            raise TypeError(
                f"BatchSim.step takes a torch tensor, got {type(actions).__name__}: pass "
                "torch.as_tensor(actions, device=sim.device), or use gym.make_vec for numpy actions"
            )
        if tuple(actions.shape) != (self.num_envs, *self.action_space.shape):
            raise ValueError(f"actions have shape {tuple(actions.shape)}, expected {(self.num_envs, *self.action_space.shape)}")
        self.state, obs, reward, terminated, truncated, info = self.core.transition(self.state, actions)
        if self.uncertainty_penalty:
            reward = reward - self.uncertainty_penalty * info["disagreement"]
        return obs, reward, terminated, truncated, info

    def observe(self) -> Any:
        """The current observation of every env (what the last ``step`` or ``reset`` returned for it)."""
        if self.state is None:
            raise RuntimeError("call reset() before observe()")
        return self.core.observe(self.state)

    def render(self) -> torch.Tensor:
        """Predicted uint8 frames ``(N, H, W, 3)``."""
        if self.state is None:
            raise RuntimeError("call reset() before render()")
        return self.core.render(self.state)

    def step_numpy(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``step`` for the numpy views: ``actions (N, A)`` checked for shape and finite values; returns
        host ``(obs, reward, terminated, truncated, disagreement)``."""
        act = np.asarray(actions, dtype=np.float32)
        expected = (self.num_envs, *self.action_space.shape)
        if act.shape != expected:
            raise ValueError(f"actions have shape {act.shape}, expected {expected} for {self.task.gym_id}")
        if not np.isfinite(act).all():
            raise ValueError(f"actions contain NaN or inf; pass finite values within {self.action_space}")
        obs, reward, terminated, truncated, info = self.step(torch.from_numpy(act))
        host = (x.cpu().numpy() for x in (reward, terminated, truncated, info["disagreement"]))
        return (self.to_numpy(obs), *host)  # type: ignore[return-value]

    def to_numpy(self, obs: Any) -> Any:
        """Host copy of a batch observation, with the observation space's dtypes."""
        if isinstance(obs, dict):
            return {k: self._host(v, k) for k, v in obs.items()}
        return self._host(obs, self.obs_mode)

    @staticmethod
    def splice(obs: Any, rows: np.ndarray, fresh: Any) -> Any:
        """Write ``fresh`` observations (rows for the envs ``rows``) into the batch ``obs``."""
        if isinstance(obs, dict):
            for k in obs:
                obs[k][rows] = fresh[k]
        else:
            obs[rows] = fresh
        return obs

    def _host(self, value: torch.Tensor, key: str) -> np.ndarray:
        array = value.cpu().numpy()
        return array.astype(self.state_space.dtype) if key == "state" else array

    def _context(self, context: dict[str, Any], n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if "obs" not in context or "frame" not in context:
            raise ValueError("a reset context needs both 'obs' (real state observations) and 'frame' (uint8 frames)")
        obs = np.asarray(context["obs"], dtype=np.float32)
        frame = np.ascontiguousarray(context["frame"])
        d, size = self.state_space.shape[0], self.task.frame_size
        given = obs.shape, frame.shape
        if obs.ndim == 1:  # one start for every env reset
            obs = np.repeat(obs[None], n, 0)
        if frame.ndim == 3:
            frame = np.repeat(frame[None], n, 0)
        if obs.shape != (n, d):
            raise ValueError(f"reset context 'obs' has shape {given[0]}, expected {(n, d)} (one per env reset) or {(d,)}")
        if not np.isfinite(obs).all():
            raise ValueError("reset context 'obs' contains NaN or inf: pass real, finite observations")
        if frame.dtype != np.uint8 or frame.shape != (n, size, size, 3):
            raise ValueError(
                f"reset context 'frame' must be uint8 {(n, size, size, 3)} or {(size, size, 3)}, got {frame.dtype} "
                f"{given[1]}: {self.task.name}'s frames come from dreamsim.make_real({self.task.name!r}).render()"
            )
        as_t = lambda x: torch.as_tensor(x, device=self.device)  # noqa: E731
        return as_t(obs), as_t(frame)
