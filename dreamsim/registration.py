"""Gymnasium ids: ``DreamSim-v0`` (the default task) and ``DreamSim/<Task>-v0`` per task card.

Registration names entry points as strings, so ``import dreamsim`` does not load torch or the model.
"""

from __future__ import annotations

import gymnasium as gym

from dreamsim.tasks import list_tasks, load_task

DEFAULT_TASK = "reacher"
ENTRY_POINT = "dreamsim.sim.env:make_env"
VECTOR_ENTRY_POINT = "dreamsim.sim.vector:DreamSimVectorEnv"


def task_id(task: str) -> str:
    return f"DreamSim/{load_task(task).title}-v0"


def register_envs() -> list[str]:
    """Register every id (idempotent); returns them."""
    ids = []
    for name in list_tasks():
        card = load_task(name)
        pairs = [(task_id(name), card)] + ([("DreamSim-v0", card)] if name == DEFAULT_TASK else [])
        for env_id, c in pairs:
            if env_id not in gym.registry:
                gym.register(
                    id=env_id,
                    entry_point=ENTRY_POINT,
                    vector_entry_point=VECTOR_ENTRY_POINT,
                    kwargs={"task": c.name},
                    max_episode_steps=c.episode_length,
                )
            ids.append(env_id)
    return ids
