"""``dreamsim demo``: DreamSim beside MuJoCo, then an agent trained in DreamSim alone, scored in MuJoCo.

1. The same random actions from the same real start state in both simulators: a side-by-side video
   (real | predicted) and the errors per horizon.
2. SAC trained for ``agent_steps`` DreamSim steps (no real data), then run in real MuJoCo beside a
   random policy and a constant middle-of-the-box action, with 95% CIs over ``episodes`` episodes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np
import torch

from dreamsim.control import ConstantAgent, evaluate
from dreamsim.files import write_atomic, write_text
from dreamsim.imagination import DreamTrainConfig, train_in_dream
from dreamsim.sim.env import DreamSimEnv
from dreamsim.tasks import load_task, make_real
from dreamsim.training.evaluation import psnr


def run_demo(
    task: str = "reacher",
    out: str | Path = "demo",
    seed: int = 0,
    steps: int | None = None,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    agent_steps: int = 0,
    episodes: int = 10,
    progress: bool = False,
) -> Path:
    """Run the demo; returns the path of ``summary.md`` (beside it: ``side_by_side.mp4``, ``summary.json``,
    and with ``agent_steps > 0`` the agent's run in ``agent/``)."""
    card = load_task(task)
    out = Path(out)
    dream = DreamSimEnv(card.name, checkpoint=checkpoint, device=device, render_mode="rgb_array")
    real = make_real(card)
    steps = steps or card.episode_length
    real_obs, _ = real.reset(seed=seed)
    rng = np.random.default_rng(seed)
    low, high = real.action_space.low, real.action_space.high  # type: ignore[attr-defined]
    actions = rng.uniform(low, high, size=(steps, *low.shape)).astype(np.float32)

    real_frames: list[np.ndarray] = [np.asarray(real.render())]
    real_states: list[np.ndarray] = [real_obs]
    real_rewards: list[float] = []
    dream_obs, _ = dream.reset(seed=seed, options={"obs": real_obs, "frame": real_frames[0]})
    dream_frames: list[np.ndarray] = [np.asarray(dream.render())]
    dream_states: list[np.ndarray] = [dream_obs]
    dream_rewards: list[float] = []
    for action in actions:
        real_obs, r, term, trunc, _ = real.step(action)
        real_frames.append(np.asarray(real.render()))
        real_states.append(real_obs)
        real_rewards.append(float(r))
        d_obs, d_r, d_term, d_trunc, _ = dream.step(action)
        dream_frames.append(np.asarray(dream.render()))
        dream_states.append(d_obs)
        dream_rewards.append(d_r)
        if term or trunc or d_term or d_trunc:
            break
    real.close()

    std = dream.sim.core.model.state_std.cpu().numpy()  # state errors in units of the data std
    n = len(real_rewards)
    real_f, dream_f = torch.as_tensor(np.stack(real_frames)), torch.as_tensor(np.stack(dream_frames))
    frame_psnr, copy_psnr = psnr(dream_f, real_f), psnr(real_f[:1].expand_as(real_f), real_f)

    def state_error(pred: np.ndarray, real: np.ndarray) -> float:
        return float(np.sqrt(np.mean(((pred - real) / std) ** 2)))

    per_horizon = {}
    for h in sorted({1, 5, 15, 50, n} & set(range(1, n + 1))):
        per_horizon[str(h)] = {
            "state_error": state_error(dream_states[h], real_states[h]),
            "state_error_copy_first": state_error(real_states[0], real_states[h]),
            "psnr": float(frame_psnr[h]),
            "psnr_copy_first": float(copy_psnr[h]),
        }
    summary: dict[str, Any] = {
        "task": card.name,
        "checkpoint": str(dream.checkpoint),
        "seed": seed,
        "steps": n,
        "return_real": float(np.sum(real_rewards)),
        "return_dream": float(np.sum(dream_rewards)),
        "horizons": per_horizon,
    }
    agent_text = ""
    if agent_steps > 0:
        agent = _agent_in_dream(card.name, out / "agent", agent_steps, episodes, seed, checkpoint, device, progress)
        summary["agent"], agent_text = agent, _agent_markdown(agent)
    scale = 4
    video = [
        np.kron(np.concatenate([r, d], 1), np.ones((scale, scale, 1), np.uint8))
        for r, d in zip(real_frames, dream_frames, strict=True)
    ]
    write_atomic(out / "side_by_side.mp4", lambda p: imageio.mimwrite(p, video, fps=10, macro_block_size=1))  # type: ignore[arg-type]
    write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    rows = "\n".join(
        f"| {h} | {v['state_error']:.3f} | {v['state_error_copy_first']:.3f} | {v['psnr']:.2f} | {v['psnr_copy_first']:.2f} |"
        for h, v in per_horizon.items()
    )
    text = (
        f"# DreamSim demo: {card.gym_id}, {n} random actions from one real start state (seed {seed})\n\n"
        f"Video: side_by_side.mp4 (left: MuJoCo, right: DreamSim). Checkpoint: {dream.checkpoint}\n\n"
        "| step | state error (std) | copy-first state error | frame PSNR (dB) | copy-first PSNR |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"Return over the episode: MuJoCo {summary['return_real']:.2f}, DreamSim {summary['return_dream']:.2f}\n"
        f"{agent_text}"
    )
    return write_text(out / "summary.md", text)


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
    real = make_real(task, render=False)
    constant = evaluate(task, ConstantAgent(real.action_space), episodes, seed + 10_000)  # type: ignore[arg-type]
    real.close()
    return {
        "dream_steps": run["final"]["dream_steps"],
        "real_env_steps_for_training": 0,
        "episodes": episodes,
        "trained": run["final"],
        "random": run["random"],
        "constant": constant,
        "policy": run["policy"],
    }


def _agent_markdown(agent: dict[str, Any]) -> str:
    rows = [("SAC trained in DreamSim only", agent["trained"]), ("random actions", agent["random"])]
    rows.append(("constant middle action", agent["constant"]))
    table = "\n".join(f"| {name} | {r['return_mean']:.2f} ± {r['return_ci95']:.2f} |" for name, r in rows)
    return (
        f"\n## An agent trained in imagination, run in MuJoCo\n\n"
        f"SAC trained for {agent['dream_steps']} DreamSim steps and no real ones; returns over "
        f"{agent['episodes']} real episodes (mean ± 95% CI). Policy: {agent['policy']}\n\n"
        "| policy | return in MuJoCo |\n|---|---|\n"
        f"{table}\n"
    )
