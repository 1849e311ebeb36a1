"""SAC trained only in DreamSim, evaluated in real MuJoCo as it learns.

    MUJOCO_GL=egl python agents/sac_in_dream.py reacher --steps 40000
    tensorboard --logdir runs/sac-in-dream-reacher/tb

Writes runs/sac-in-dream-<task>/{policy.zip, returns.json, tb/}; the world model is the task's
shipped checkpoint unless --checkpoint names another. Real episodes are only used to evaluate,
and, with --start-episodes, as the states imagined episodes start from (MBPO-style, with a short
--max-episode-steps).
SB3 settings: dreamsim.imagination.ALGO_DEFAULTS.
"""

from __future__ import annotations

import sys

from dreamsim.cli import recipe_main

DEFAULTS = {"steps": 40_000, "num_envs": 16, "eval_every": 10_000}

if __name__ == "__main__":
    recipe_main("sac", __doc__ or "", DEFAULTS, sys.argv[1:])
