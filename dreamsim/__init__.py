"""DreamSim: a learned, batched simulator for MuJoCo tasks, served as Gymnasium environments.

``import dreamsim`` registers ``DreamSim-v0`` and ``DreamSim/<Task>-v0``; the model code loads
only when an env is made.
"""

from dreamsim.registration import register_envs
from dreamsim.tasks import Task, list_tasks, load_task, make_real

__all__ = ["Task", "list_tasks", "load_task", "make_real", "register_envs"]
__version__ = "0.1.0"

register_envs()
