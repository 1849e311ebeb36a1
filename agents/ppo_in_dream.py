"""PPO trained only in DreamSim, evaluated in real MuJoCo as it learns.

    MUJOCO_GL=egl python agents/ppo_in_dream.py reacher --steps 200000
    tensorboard --logdir runs/ppo-in-dream-reacher/tb

Writes runs/ppo-in-dream-<task>/{policy.zip, returns.json, tb/}; the world model is the task's
shipped checkpoint unless --checkpoint names another. Real episodes are only used to evaluate,
and, with --start-episodes, as the states imagined episodes start from.
SB3 settings: dreamsim.imagination.ALGO_DEFAULTS.
"""

from __future__ import annotations

import sys

from dreamsim.cli import recipe_main

DEFAULTS = {"steps": 200_000, "num_envs": 64, "eval_every": 50_000}

if __name__ == "__main__":
    recipe_main("ppo", __doc__ or "", DEFAULTS, sys.argv[1:])
