"""The learned simulator: the batched functional core and its Gymnasium views."""

from dreamsim.sim.core import OBS_MODES, DreamCore, SimState
from dreamsim.sim.env import DreamSimEnv
from dreamsim.sim.registration import register_envs, task_id

__all__ = ["OBS_MODES", "DreamCore", "DreamSimEnv", "SimState", "register_envs", "task_id"]
