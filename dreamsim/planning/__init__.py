"""Latent MPC: CEM and MPPI planners, their objectives (learned model, MuJoCo) and real-env agents."""

from dreamsim.planning.agents import MPCAgent, TrueSimMPCAgent
from dreamsim.planning.objectives import Latent, LatentObjective, MujocoObjective, physics_state
from dreamsim.planning.planner import PRESETS, Planner, PlannerConfig, planner_config

__all__ = [
    "PRESETS",
    "Latent",
    "LatentObjective",
    "MPCAgent",
    "MujocoObjective",
    "Planner",
    "PlannerConfig",
    "TrueSimMPCAgent",
    "physics_state",
    "planner_config",
]
