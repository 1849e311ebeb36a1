"""PPO trained only in DreamSim, evaluated in real MuJoCo as it learns.

    MUJOCO_GL=egl python agents/ppo_in_dream.py reacher --steps 200000
    tensorboard --logdir runs/ppo-in-dream-reacher/tb

Writes runs/ppo-in-dream-<task>/{policy.zip, returns.json, tb/}; the world model is the task's
shipped checkpoint unless --checkpoint names another. Real episodes are only used to evaluate,
and, with --start-episodes, as the states imagined episodes start from.
SB3 settings: dreamsim.imagination.ALGO_DEFAULTS. From Python: main(Args(task="reacher", steps=...)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamsim.recipes import RecipeArgs, command_line, result_line, run_recipe


@dataclass(frozen=True)
class Args(RecipeArgs):
    algo: str = "ppo"
    steps: int = 200_000
    num_envs: int = 64
    eval_every: int = 50_000


def main(args: Args) -> dict[str, Any]:
    """Train PPO in DreamSim, scoring it in MuJoCo as it learns; returns the run's summary (returns.json)."""
    return run_recipe(args)


if __name__ == "__main__":
    print(result_line(command_line(Args, main, __doc__ or "")))
