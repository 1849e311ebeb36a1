"""``DreamSimVecEnv``: a Stable-Baselines3 ``VecEnv`` over the batched core (no per-env Python envs).

SB3's convention: a finished env is reset in the same step; its last observation is in
``infos[i]["terminal_observation"]`` and ``infos[i]["TimeLimit.truncated"]`` says whether the
episode was cut by the time limit rather than terminated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from dreamsim.sim.batch import BatchSim, reset_context
from dreamsim.tasks import Task


class DreamSimVecEnv(VecEnv):
    """``DreamSimVecEnv("DreamSim-v0", num_envs=64, obs_mode=..., checkpoint=..., device=...)``.

    ``env`` is a registered DreamSim id, a task name or a ``Task``.
    """

    def __init__(self, env: str | Task = "DreamSim-v0", num_envs: int = 1, **kwargs: Any):
        kwargs.pop("render_mode", None)  # frames always come from get_images()/render()
        task = env
        if isinstance(env, str) and env in gym.registry:
            if not str(gym.spec(env).entry_point).startswith("dreamsim."):
                raise ValueError(f"{env} is not a DreamSim id: pass DreamSim-v0, DreamSim/<Task>-v0 or a task name")
            task = gym.spec(env).kwargs["task"]
        asked = kwargs.pop("task", task)
        if asked != task:
            raise ValueError(f"{env} simulates {task}; for {asked} pass its id or task name as env: DreamSimVecEnv({asked!r})")
        self.sim = BatchSim(task, num_envs, **kwargs)
        self.render_mode = "rgb_array"  # read by VecEnv.__init__
        super().__init__(num_envs, self.sim.observation_space, self.sim.action_space)
        metadata: dict[str, Any] = {**self.metadata, "render_fps": self.sim.real_fps}
        self.metadata = metadata  # VecVideoRecorder's frame rate
        self._actions: np.ndarray | None = None

    def reset(self) -> VecEnvObs:
        """Seeds from ``seed()`` and a start context from ``set_options({"obs": ..., "frame": ...})``
        (one real observation per env, or the same for all) apply to this reset only, as in SB3."""
        obs = self.sim.to_numpy(self.sim.reset(context=self._context(), seeds=self._seeds))  # seeds apply once the input passes
        self._reset_seeds()
        self._reset_options()
        return obs

    def _context(self) -> dict[str, np.ndarray] | None:
        found = [reset_context(o) for o in self._options]
        if all(c is None for c in found):
            return None
        contexts = [c for c in found if c is not None]
        if len(contexts) < len(found) or any(c.keys() != contexts[0].keys() for c in contexts):
            given = "set_options gave start contexts ('obs', 'frame') to some envs only, or with other keys"
            raise ValueError(f"{given}: give each env the same keys")
        return {k: np.stack([np.asarray(c[k]) for c in contexts]) for k in contexts[0]}

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("call step_async() before step_wait()")
        obs, reward, terminated, truncated, disagreement = self.sim.step_numpy(self._actions)
        self._actions = None
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{"disagreement": float(d)} for d in disagreement]
        finished = np.flatnonzero(dones)
        for i in finished:  # copies: the reset below overwrites these rows
            infos[i]["terminal_observation"] = (
                {k: v[i].copy() for k, v in obs.items()} if isinstance(obs, dict) else obs[i].copy()
            )
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if len(finished):
            obs = self.sim.splice(obs, finished, self.sim.to_numpy(self.sim.reset(finished.tolist())))
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.sim.state = None

    def get_images(self) -> Sequence[np.ndarray | None]:
        return list(self.sim.render().cpu().numpy())

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(list(self._get_indices(indices)))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Attributes belong to the one batched env, so they can be set for all envs only."""
        if set(self._get_indices(indices)) != set(range(self.num_envs)):
            raise ValueError(
                f"DreamSimVecEnv's envs share their attributes: set {attr_name!r} for all {self.num_envs} (indices=None)"
            )
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        raise NotImplementedError(
            f"DreamSimVecEnv has no per-env sub-environments to call {method_name!r} on; use env.sim (BatchSim)"
        )

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))
