"""DreamSim: a learned, batched simulator for MuJoCo tasks, served as Gymnasium environments.

``import dreamsim`` registers ``DreamSim-v0`` and ``DreamSim/<Task>-v0``; the model code loads
only when an env is made.
"""

import os
import sys

from dreamsim.registration import register_envs
from dreamsim.tasks import Task, list_tasks, load_task, make_real

__all__ = ["Task", "list_tasks", "load_task", "make_real", "register_envs"]
__version__ = "0.1.0"

register_envs()


def _one_torch_thread_after_fork() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


# A forked child inherits torch's OpenMP thread pool without its threads, and its first parallel
# operation then waits for them forever. Gymnasium's async vector env and SB3's SubprocVecEnv
# (start_method="fork") fork their workers, often after the parent has used torch: with one thread
# each, their torch never enters OpenMP. Spawned processes start afresh and keep torch's default.
os.register_at_fork(after_in_child=_one_torch_thread_after_fork)
