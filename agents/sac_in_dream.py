"""SAC trained only in DreamSim, evaluated in real MuJoCo as it learns.

    MUJOCO_GL=egl python agents/sac_in_dream.py reacher --steps 40000
    tensorboard --logdir runs/sac-in-dream-reacher/tb

Writes runs/sac-in-dream-<task>/{policy.zip, returns.json, tb/}; the world model is the task's
shipped checkpoint unless --checkpoint names another. Real episodes are only used to evaluate.
"""

from __future__ import annotations

import sys

from dreamsim.imagination import recipe_main

DEFAULTS = {"steps": 40_000, "num_envs": 16, "eval_every": 10_000}
# Imagined transitions are cheap and plentiful: a larger batch, two updates per 16 transitions.
SAC_KWARGS = {"learning_starts": 1_000, "batch_size": 512, "train_freq": 1, "gradient_steps": 2}

if __name__ == "__main__":
    recipe_main("sac", __doc__ or "", DEFAULTS, SAC_KWARGS, sys.argv[1:])
