"""``dreamsim demo``: an agent trained in DreamSim alone, scored in MuJoCo, and the validation report.

1. SAC trains for ``agent_steps`` DreamSim steps on the shipped world model (no real data), then runs
   in real MuJoCo beside a random policy and a constant middle-of-the-box action (95% CIs over
   ``episodes`` episodes).
2. ``dreamsim validate`` on the same model with that policy: matched-state fidelity, the transfer gap,
   the error plot and the side-by-side video, in the same folder.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from dreamsim.control import ConstantAgent, evaluate
from dreamsim.imagination import DreamTrainConfig, train_in_dream
from dreamsim.model.checkpoint import read_config
from dreamsim.tasks import DEFAULT_TASK, load_task, real_spaces
from dreamsim.validation.report import ValidateConfig, validate


def run_demo(
    task: str | None = None,
    out: str | Path = "demo",
    seed: int = 0,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    agent_steps: int = 0,
    episodes: int = 10,
    starts: int = 16,
    progress: bool = False,
) -> Path:
    """Run the demo into ``out``; returns the path of its ``report.md`` (the agent's run is in ``agent/``).
    ``task`` defaults to ``checkpoint``'s task, else Reacher; one that is not the checkpoint's is refused."""
    if checkpoint is not None:
        trained_for = read_config(checkpoint)["task"]
        if task is not None and load_task(task).name != trained_for:
            fix = f"leave the task out or pass {trained_for}"
            raise ValueError(f"{checkpoint} was trained for {trained_for!r}, not {task!r}: {fix}")
        task = trained_for
    card = load_task(task or DEFAULT_TASK)
    out = Path(out)
    if agent_steps < 0:
        raise ValueError(f"agent_steps must be 0 (no agent) or more, got {agent_steps}")
    # Settings are checked before minutes of agent training; the policy joins once it exists.
    config = ValidateConfig(starts=starts, transfer_episodes=episodes, seed=seed, device=device)
    extra: dict[str, Any] = {}
    if agent_steps > 0:
        extra["agent"] = _agent_in_dream(card.name, out / "agent", agent_steps, episodes, seed, checkpoint, device, progress)
        config = replace(config, policy=extra["agent"]["policy"])
    return validate(card.name if checkpoint is None else checkpoint, out, config, extra)


def _agent_in_dream(
    task: str, out: Path, steps: int, episodes: int, seed: int, checkpoint: str | Path | None, device: str, progress: bool
) -> dict[str, Any]:
    """Train SAC in DreamSim, then score it, a random policy and a constant action in real MuJoCo."""
    config = DreamTrainConfig(
        algo="sac",
        steps=steps,
        eval_every=steps,
        eval_episodes=episodes,
        seed=seed,
        checkpoint=None if checkpoint is None else str(checkpoint),
        device=device,
    )
    run = train_in_dream(task, out, config, progress=progress)
    constant = evaluate(task, ConstantAgent(real_spaces(task)[1]), episodes, seed + 10_000)
    return {
        "dream_steps": run["final"]["dream_steps"],
        "real_env_steps_for_training": 0,
        "episodes": episodes,
        "trained": run["final"],
        "random": run["random"],
        "constant": constant,
        "policy": run["policy"],
    }
