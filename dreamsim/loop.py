"""``dreamsim loop``: Dyna-style improvement of a world model and an agent, scored in real MuJoCo.

Iteration 0 collects ``initial_steps`` random real steps. Every iteration then:
1. collects ``collect_steps`` real steps with the current policy plus Gaussian exploration noise
   (iteration 0: the random data above);
2. fine-tunes the world model on all real data so far, ``train.steps`` more steps;
3. trains the agent in imagination on that model, ``agent_steps`` more DreamSim steps (with
   ``rollout_length``: short imagined episodes branched from real states, as in MBPO);
4. evaluates the agent in MuJoCo and logs ``real/return`` against the real steps used (TensorBoard).

A real step is one agent step of the real twin: ``action_repeat`` Gymnasium steps of the task's env
(fewer only where an episode ends inside the repeat). ``loop.json`` gives both counts.

Folder ``out``: ``episodes/`` (every real step), ``model/`` (the world-model run), ``agent/`` (the
policy and its runs), ``tb/`` and ``loop.json``. Resumable: rerunning continues after the last
finished iteration, and each stage of an interrupted one skips what is already on disk (the data
already collected, the model steps already trained, a finished agent run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dreamsim.control import Agent, PolicyAgent
from dreamsim.data import EpisodeStore, collect, collect_with_agent
from dreamsim.device import describe_machine, resolve_device
from dreamsim.files import read_json, write_json
from dreamsim.imagination import ALGOS, DreamTrainConfig, finished_run, load_policy, train_in_dream
from dreamsim.model.checkpoint import has_training_state, load_checkpoint
from dreamsim.tasks import Task, load_task
from dreamsim.training import TrainConfig, train


@dataclass(frozen=True)
class LoopConfig:
    """One Dyna loop; ``train`` is the world-model config with ``steps`` per iteration (its ``init``, a
    checkpoint such as a shipped model, is where the first iteration's model starts)."""

    iterations: int = 5
    initial_steps: int = 10_000
    collect_steps: int = 5_000
    agent_steps: int = 20_000
    noise: float = 0.1  # exploration noise, a fraction of the action box's half-width
    algo: str = "sac"
    num_envs: int = 16
    eval_episodes: int = 5
    workers: int = 2  # processes for the random collection of iteration 0
    seed: int = 0
    device: str = "auto"
    # MBPO's branched rollouts: imagined episodes of this many steps, started anywhere in the real data
    # so far; None: whole episodes from the model's start states.
    rollout_length: int | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=1_000))

    def __post_init__(self) -> None:
        counts = [self.iterations, self.initial_steps, self.collect_steps, self.agent_steps, self.train.steps]
        counts += [self.num_envs, self.eval_episodes, self.workers]
        if self.rollout_length is not None:
            counts.append(self.rollout_length)
        if min(counts) < 1:
            raise ValueError(
                "iterations, initial_steps, collect_steps, agent_steps, train.steps, num_envs, eval_episodes, "
                "workers and rollout_length must all be at least 1"
            )
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algo {self.algo!r}: choose one of {sorted(ALGOS)}")
        if self.noise < 0:
            raise ValueError(f"noise is a standard deviation and cannot be negative, got {self.noise}")


def run_loop(task: str | Task, out: str | Path, config: LoopConfig, progress: bool = False) -> dict[str, Any]:
    """Run (or continue) the loop in ``out`` up to ``config.iterations``; returns ``loop.json``'s content."""
    from torch.utils.tensorboard import SummaryWriter

    card = load_task(task)
    out = Path(out)
    episodes, model_run, agent_dir = out / "episodes", out / "model", out / "agent"
    state_path = out / "loop.json"
    state: dict[str, Any] = {"task": card.name, "history": []}
    if state_path.is_file():
        state = read_json(state_path, "it holds the loop's history: restore it, or start over with another --out")
    if state["task"] != card.name:
        raise ValueError(f"{out} holds a loop for {state['task']!r}, not {card.name!r}: choose another --out")
    changed = _changed_settings(state.get("config", {}), asdict(config))
    if changed:
        raise ValueError(
            f"{out} holds a loop run with other settings ({', '.join(changed)}): rerun it with the same ones "
            "(only iterations, device and workers may change), or choose another --out"
        )
    # Settings that would otherwise fail only after the first collection.
    resolve_device(config.device)
    resolve_device(config.train.device)
    if config.train.init and not state["history"]:
        load_checkpoint(config.train.init, task=card.name)
    writer = SummaryWriter(str(out / "tb"))
    try:
        policy_path = agent_dir / "policy.zip"
        for iteration in range(len(state["history"]), config.iterations):
            # 1. Real data: random at first, then the current policy with exploration noise.
            target = config.initial_steps + iteration * config.collect_steps
            missing = target - EpisodeStore(episodes).steps()
            if missing > 0 and iteration == 0:
                collect(card, episodes, missing, config.workers, config.seed, progress=progress)
            elif missing > 0:
                agent: Agent = PolicyAgent(load_policy(policy_path))
                collect_with_agent(card, episodes, missing, agent, config.noise, config.seed + iteration, progress=progress)
            real_steps = EpisodeStore(episodes).steps()
            # 2. The world model, on all real data so far.
            model_steps = (iteration + 1) * config.train.steps
            resume = has_training_state(model_run / "checkpoint")
            model = replace(config.train, steps=model_steps, init=None if resume else config.train.init)
            train(card, episodes, model_run, model, resume=resume, progress=progress)
            # 3. The agent, in imagination on that model; 4. its return in MuJoCo.
            dream = DreamTrainConfig(
                algo=config.algo,
                steps=config.agent_steps,
                num_envs=config.num_envs,
                eval_every=config.agent_steps,
                eval_episodes=config.eval_episodes,
                seed=config.seed + iteration,
                checkpoint=str(model_run / "checkpoint"),
                device=config.device,
                init_policy=str(policy_path) if policy_path.is_file() else None,
                max_episode_steps=config.rollout_length,
                start_episodes=None if config.rollout_length is None else str(episodes),
            )
            run = finished_run(agent_dir, (iteration + 1) * config.agent_steps)
            if run is None:
                run = train_in_dream(card, agent_dir, dream, progress=progress)
            entry = {
                "iteration": iteration,
                "real_steps": real_steps,
                "gymnasium_steps": real_steps * card.action_repeat,  # at most: see the module's docstring
                "model_steps": model_steps,
                "dream_steps": run["final"]["dream_steps"],
                "return_mean": run["final"]["return_mean"],
                "return_ci95": run["final"]["return_ci95"],
                "random_return_mean": run["random"]["return_mean"],
            }
            writer.add_scalar("real/return", entry["return_mean"], real_steps)
            writer.add_scalar("real/random_return", entry["random_return_mean"], real_steps)
            writer.flush()
            state["history"].append(entry)
            state["config"] = asdict(config)
            state["machine"] = describe_machine()  # of the last iteration
            write_json(state_path, state)
    finally:
        writer.close()
    return state


# Settings a continued loop may change: its length, and where and how fast it runs. Every other one
# shapes the iterations already done; ``train.init`` only seeds the first.
_FREE = {"iterations", "device", "workers", "train.device", "train.init"}


def _changed_settings(saved: dict[str, Any], asked: dict[str, Any], prefix: str = "") -> list[str]:
    """``name: saved -> asked`` for each setting of ``asked`` that ``saved`` (an earlier run's, which may
    lack newer settings) holds with another value."""
    changes = []
    for key, value in asked.items():
        name = prefix + key
        if name in _FREE or key not in saved:
            continue
        if isinstance(value, dict):
            changes += _changed_settings(saved[key], value, f"{name}.")
        elif saved[key] != value:
            changes.append(f"{name}: {saved[key]!r} -> {value!r}")
    return changes
