"""The learned simulator: the batched functional core and its Gymnasium views."""

from dreamsim.sim.batch import BatchSim
from dreamsim.sim.core import OBS_MODES, DreamCore, SimState
from dreamsim.sim.env import DreamSimEnv
from dreamsim.sim.vector import DreamSimVectorEnv

__all__ = ["OBS_MODES", "BatchSim", "DreamCore", "DreamSimEnv", "DreamSimVectorEnv", "SimState"]
