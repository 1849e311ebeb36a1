"""SAC trained only in DreamSim, evaluated in real MuJoCo as it learns.

    MUJOCO_GL=egl python agents/sac_in_dream.py reacher --steps 40000
    tensorboard --logdir runs/sac-in-dream-reacher/tb

Writes runs/sac-in-dream-<task>/{policy.zip, returns.json, tb/}; the world model is the task's
shipped checkpoint unless --checkpoint names another. Real episodes are only used to evaluate,
and, with --start-episodes, as the states imagined episodes start from (MBPO-style, with a short
--max-episode-steps).
SB3 settings: dreamsim.imagination.ALGO_DEFAULTS. From Python: main(Args(task="reacher", steps=...)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamsim.recipes import RecipeArgs, command_line, result_line, run_recipe


@dataclass(frozen=True)
class Args(RecipeArgs):
    algo: str = "sac"
    steps: int = 40_000
    num_envs: int = 16
    eval_every: int = 10_000


def main(args: Args) -> dict[str, Any]:
    """Train SAC in DreamSim, scoring it in MuJoCo as it learns; returns the run's summary (returns.json)."""
    return run_recipe(args)


if __name__ == "__main__":
    print(result_line(command_line(Args, main, __doc__ or "")))
