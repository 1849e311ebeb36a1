"""Gymnasium ids: ``DreamSim-v0`` (the default task) and ``DreamSim/<Task>-v0`` per task card.

Each id's entry points are the strings ``dreamsim.registration:make_<task>`` and
``make_vec_<task>`` (so the spec stays serialisable), resolved by this module's ``__getattr__`` to
small creators that import the simulator only when called: ``import dreamsim`` loads no torch.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec

from dreamsim.tasks import DEFAULT_TASK, list_tasks, load_task


def task_id(task: str) -> str:
    return f"DreamSim/{load_task(task).title}-v0"


class _Creator:
    """One task's entry point. Its id carries the task's time limit, so another ``task`` is refused
    rather than simulated under the wrong limit."""

    metadata = {"render_modes": ["rgb_array"]}  # read by gym.make, which wraps other render modes

    def __init__(self, task: str, vector: bool):
        self.task, self.vector = task, vector

    def __call__(self, **kwargs: Any) -> Any:
        if kwargs.get("task", self.task) != self.task:
            raise ValueError(
                f"this id simulates {self.task} under its time limit; for {kwargs['task']} use {task_id(kwargs['task'])!r}"
            )
        if self.vector:
            from dreamsim.sim.vector import DreamSimVectorEnv

            if kwargs.get("max_episode_steps") == -1:  # gym.make's "no time limit"; make_vec passes it through
                kwargs["max_episode_steps"] = sys.maxsize
            return DreamSimVectorEnv(**kwargs)
        from dreamsim.sim.env import make_env

        return make_env(**kwargs)


class JsonSpec:
    """For DreamSim's envs: the ``spec`` that ``gym.make`` gives them keeps path arguments as strings,
    so ``env.spec.to_json()`` works after ``gym.make(id, checkpoint=Path(...))`` (Gymnasium stores the
    caller's keyword arguments as they came, and ``Path`` is not JSON)."""

    _spec: EnvSpec | None = None

    @property
    def spec(self) -> EnvSpec | None:
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None:
            kwargs = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in value.kwargs.items()}
            value = dataclasses.replace(value, kwargs=kwargs)
        self._spec = value


def __getattr__(name: str) -> _Creator:
    for prefix, vector in (("make_vec_", True), ("make_", False)):
        if name.startswith(prefix) and name[len(prefix) :] in list_tasks():
            return _Creator(name[len(prefix) :], vector)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register_envs() -> list[str]:
    """Register every id (idempotent); returns them."""
    ids = []
    titles: dict[str, str] = {}
    for name in list_tasks():
        card = load_task(name)
        if titles.setdefault(card.title, name) != name:  # one id per title: the second card would vanish
            raise ValueError(f"task cards {titles[card.title]!r} and {name!r} share the title {card.title!r}: give each its own")
        for env_id in [task_id(name)] + (["DreamSim-v0"] if name == DEFAULT_TASK else []):
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=f"{__name__}:make_{card.name}",
                    vector_entry_point=f"{__name__}:make_vec_{card.name}",
                    kwargs={"task": card.name},
                    max_episode_steps=card.episode_length,
                )
            ids.append(env_id)
    return ids
