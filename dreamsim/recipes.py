"""What the ``agents/`` recipes share: their arguments as a dataclass, the run, and the command line.

A recipe file holds ``Args`` (a ``RecipeArgs`` with its algorithm and budget) and ``main(args) ->
summary``; run as a script, it prints ``result_line(command_line(Args, main, __doc__))``.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from dreamsim.stats import plus_minus
from dreamsim.tasks import DEFAULT_TASK, REAL_OBS_MODES


@dataclass(frozen=True)
class RecipeArgs:
    """One recipe run: train ``algo`` in DreamSim on ``task``, score it in MuJoCo every
    ``eval_every`` DreamSim steps, and write ``out`` (default ``runs/<algo>-in-dream-<task>``).
    Each recipe's ``Args`` sets its own ``algo``, ``steps``, ``num_envs`` and ``eval_every``."""

    task: str = DEFAULT_TASK
    algo: str = "sac"
    steps: int = 20_000  # DreamSim steps over all envs
    num_envs: int = 16
    obs_mode: str = "state"  # what the policy observes: "state", "pixels" (SB3's CnnPolicy) or "dict" (both)
    eval_every: int = 5_000  # DreamSim steps between real evaluations
    eval_episodes: int = 10  # real episodes per evaluation
    seed: int = 0
    checkpoint: str | None = None  # world model (default: the task's shipped one)
    out: str | None = None
    uncertainty_penalty: float = 0.0  # subtract this times the ensemble's disagreement from rewards
    max_episode_steps: int | None = None  # imagined episode length (default: the task card's)
    start_episodes: str | None = None  # real episodes to start imagined ones anywhere in (default: shipped start states)
    init_policy: str | None = None  # a saved policy.zip to go on training (default: a new one)

    @property
    def run_folder(self) -> str:
        return self.out or f"runs/{self.algo}-in-dream-{self.task}"


def run_recipe(args: RecipeArgs) -> dict[str, Any]:
    """Train, evaluate and save as ``args`` say; return ``returns.json``'s summary. Bad settings
    raise ``ValueError`` or ``FileNotFoundError`` before any training."""
    from dreamsim.imagination import DreamTrainConfig, train_in_dream

    shared = {f.name for f in fields(DreamTrainConfig)}
    config = DreamTrainConfig(**{f.name: getattr(args, f.name) for f in fields(args) if f.name in shared})
    return train_in_dream(args.task, args.run_folder, config)


def result_line(summary: dict[str, Any]) -> str:
    """The last evaluation's real return beside the random policy's, and where the policy is."""
    final, random = summary["final"], summary["random"]
    return (
        f"real {summary['task']} return after {final['dream_steps']} DreamSim steps: "
        f"{plus_minus(final['return_mean'], final['return_ci95'])} (random policy {random['return_mean']:.2f}); "
        f"policy: {summary['policy']}"
    )


# The command line's help for each option; the defaults come from the recipe's ``Args``.
_HELP = {
    "steps": "DreamSim steps over all envs, rounded up as SB3 does to whole rollouts "
    "(SAC: one step of every env; PPO: n_steps of each)",
    "num_envs": "imagined episodes run side by side",
    "obs_mode": "what the policy observes: the state, the frame (pixels, SB3's CnnPolicy) or both (dict)",
    "eval_every": "DreamSim steps between real evaluations",
    "eval_episodes": "real episodes per evaluation",
    "seed": "seeds the agent, DreamSim and the evaluations",
    "checkpoint": "world model checkpoint (default: the task's shipped one)",
    "out": "run folder (default: runs/{algo}-in-dream-<task>)",
    "uncertainty_penalty": "subtract this times the ensemble's disagreement from rewards",
    "max_episode_steps": "imagined episode length (default: the task card's)",
    "start_episodes": "episode folder: start imagined episodes anywhere in its real episodes (default: the shipped start states)",
    "init_policy": "a saved policy.zip of the same algorithm to go on training, e.g. a dreamsim loop's (default: a new one)",
}

A = TypeVar("A", bound=RecipeArgs)


def option_type(hint: Any) -> type:
    """``int``, ``float`` or ``str``: what argparse turns an option's text into, for a field whose
    resolved type hint is ``hint`` (``int | None`` gives ``int``)."""
    kind = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    return kind if kind in (int, float) else str


def _parser(cls: type[RecipeArgs], doc: str) -> argparse.ArgumentParser:
    defaults = cls()
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", default=defaults.task, help="task card (default: %(default)s)")
    for f in fields(cls):
        if f.name in _HELP:
            default = getattr(defaults, f.name)
            kind = option_type(hints[f.name])
            described = _HELP[f.name].replace("{algo}", defaults.algo)
            text = described if default is None else f"{described} (default: {default})"
            choices = REAL_OBS_MODES if f.name == "obs_mode" else None
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=default, choices=choices, help=text)
    return parser


def command_line(cls: type[A], main: Callable[[A], dict[str, Any]], doc: str, argv: list[str] | None = None) -> dict[str, Any]:
    """Run a recipe as a script: ``<task> --steps ... --out ...`` (the defaults are ``cls``'s) into
    ``main``, and return its summary; bad settings end as usage errors (exit status 2), as
    ``dreamsim`` commands do."""
    parser = _parser(cls, doc)
    args = replace(cls(), **vars(parser.parse_args(argv)))
    try:
        summary = main(args)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    return summary
