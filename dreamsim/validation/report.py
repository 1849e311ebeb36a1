"""``dreamsim validate``: a checkpoint against MuJoCo ground truth, as a report folder a person can read.

- ``report.md`` / ``report.json``: the task card's checks (``checks.py``: pass or fail at each
  horizon against copy-last), matched-state fidelity per horizon (state, reward, PSNR, SSIM, each
  beside copy-last), the transfer gap of random actions and of the given policy, and, with real
  held-out episodes, the open-loop fidelity on them (also in ``fidelity.json`` / ``fidelity.md``).
- ``errors.png``: the four errors against horizon.
- ``rollouts.mp4``: MuJoCo | DreamSim | difference, for the first few matched starts.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import numpy as np

from dreamsim.control import Agent, PolicyAgent, RandomAgent
from dreamsim.data.store import EpisodeStore
from dreamsim.device import describe_machine, resolve_device
from dreamsim.files import display_path, write_atomic, write_json, write_text
from dreamsim.model.checkpoint import Checkpoint, check_fit, load_checkpoint, load_for_task, read_config
from dreamsim.stats import plus_minus
from dreamsim.tasks import Task, list_tasks, load_task, real_spaces
from dreamsim.training.evaluation import fidelity, fidelity_table
from dreamsim.validation.checks import Check, checks_markdown, fidelity_checks, unchecked_horizons
from dreamsim.validation.matched import METRICS, Rollout, check_settings, horizon_curves, matched_rollouts
from dreamsim.validation.transfer import transfer_gap

VIDEO_ROLLOUTS = 3  # matched rollouts per action source in the video
REPORT_FILES = {"fidelity.json", "fidelity.md", "errors.png", "rollouts.mp4", "report.json", "report.md"}


@dataclass(frozen=True)
class ValidateConfig:
    """What ``validate`` measures. ``policy``: an SB3 ``.zip`` to validate beside random actions;
    ``episodes``: a folder of held-out real episodes for the open-loop fidelity."""

    policy: str | None = None
    episodes: str | None = None
    starts: int = 16
    horizon: int = 50
    context: int = 5
    transfer_episodes: int = 10
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        check_settings(self.starts, self.horizon, self.context)
        if self.transfer_episodes < 2:
            raise ValueError(f"the transfer gap's confidence interval needs at least 2 episodes, got {self.transfer_episodes}")


def resolve_target(target: str | Path, device: str = "auto") -> tuple[Task, Checkpoint]:
    """A task name (its shipped checkpoint) or a checkpoint folder -> ``(task, checkpoint)``."""
    dev = resolve_device(device)
    if str(target) in list_tasks():
        task = load_task(str(target))
        return task, load_for_task(task, None, dev)
    if not Path(target).exists():
        raise FileNotFoundError(f"{target} is neither a task ({', '.join(list_tasks())}) nor a checkpoint folder")
    name = read_config(target)["task"]
    try:
        task = load_task(name)
    except ValueError as err:
        raise ValueError(f"the checkpoint {target} was trained for task {name!r}, which this DreamSim lacks: {err}") from err
    return task, load_checkpoint(target, dev)


def heldout_fidelity(task: Task, ckpt: Checkpoint, episodes: str | Path) -> dict[str, Any]:
    """Open-loop and one-step fidelity of ``ckpt`` on the recorded real episodes in ``episodes``."""
    store = EpisodeStore(episodes)
    if len(store) == 0:
        raise store.empty_error(f"collect held-out ones with `dreamsim collect {task.name} --seed 2 --out {episodes}`")
    eps = list(store.episodes())
    check_fit(ckpt.model.cfg, eps[0], episodes, display_path(ckpt.path), task.name)
    metrics = fidelity(ckpt.model, eps, task.horizons)
    metrics["checkpoint"] = display_path(ckpt.path)
    metrics["episode_folder"] = str(episodes)
    metrics["real_steps"] = int(sum(len(e) for e in eps))
    return metrics


def _heldout_markdown(task: Task, metrics: dict[str, Any]) -> str:
    horizons = tuple(h for h in task.horizons if f"open_loop/{h}/psnr" in metrics)
    return (
        f"{fidelity_table(metrics, horizons)}\n\n"
        "Open-loop: from each episode's first real observation, the episode's actions alone; "
        "from one observation: the model sees only the observation at t, at every step t; "
        "copy-last: the step-0 (open-loop) or previous (one-step) real observation. "
        "State error: RMS over dimensions, in units of each dimension's std.\n"
    )


def validate(
    target: str | Path, out: str | Path | None = None, config: ValidateConfig | None = None, extra: dict[str, Any] | None = None
) -> Path:
    """Validate ``target`` (task name or checkpoint folder); write the report folder ``out`` (default
    ``reports/<task>``) and return the path of its ``report.md``. ``extra`` joins ``report.json``
    (``dreamsim demo`` puts its agent's scores there, and they get their own section)."""
    cfg = config or ValidateConfig()
    task, ckpt = resolve_target(target, cfg.device)
    out = Path(out or f"reports/{task.name}")
    policy: Agent | None = None
    if cfg.policy is not None:
        from dreamsim.imagination import load_policy

        policy = PolicyAgent(load_policy(cfg.policy, task))
    # Inputs first: a wrong policy or episode folder fails before minutes of rollouts.
    heldout = heldout_fidelity(task, ckpt, cfg.episodes) if cfg.episodes is not None else None
    space = real_spaces(task)[1]
    sources: dict[str, Agent] = {"random": RandomAgent(space, seed=cfg.seed + 1)}
    if policy is not None:
        sources["policy"] = policy
    behaviour = policy or RandomAgent(space, seed=cfg.seed + 2)
    rollouts = matched_rollouts(ckpt.model, task, behaviour, sources, cfg.starts, cfg.horizon, cfg.context, cfg.seed)
    curves = horizon_curves(rollouts, ckpt.model.state_std.cpu().numpy())
    agents: dict[str, Agent] = {"random": RandomAgent(space, seed=cfg.seed + 3)}  # type: ignore[arg-type]
    if policy is not None:
        agents["policy"] = policy
    transfer = transfer_gap(task, agents, cfg.transfer_episodes, cfg.seed + 20_000, ckpt.path, cfg.device)
    checks, unchecked = fidelity_checks(task, curves, heldout), unchecked_horizons(task, curves, heldout)

    report: dict[str, Any] = {
        "task": task.name,
        "checkpoint": display_path(ckpt.path),
        "config": asdict(cfg),
        "checks": {
            "passed": all(c.passed for c in checks),
            "max_state_error_ratio": task.max_state_error_ratio,
            "min_psnr_gain": task.min_psnr_gain,
            "unchecked_horizons": unchecked,
            "items": [{**asdict(c), "passed": c.passed} for c in checks],
        },
        "matched": {"starts": cfg.starts, "behaviour": "policy" if policy else "random", "curves": curves},
        "transfer": transfer,
        **(extra or {}),
        "machine": describe_machine(),
    }
    # Every file is written to a staging folder first and moved in only once all exist, so a failure
    # (no ffmpeg, say) cannot leave new numbers beside an old report.md.
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.staging-") as tmp:
        stage = Path(tmp)
        if heldout is not None:
            report["heldout"] = heldout
            write_json(stage / "fidelity.json", heldout)
            title = f"# Fidelity of {display_path(ckpt.path)} on {heldout['episodes']} held-out {task.gym_id} episodes\n\n"
            write_text(stage / "fidelity.md", title + _heldout_markdown(task, heldout))
        _plot(curves, stage / "errors.png", task)
        _video(rollouts, stage / "rollouts.mp4")
        write_json(stage / "report.json", report)
        write_text(stage / "report.md", _markdown(task, report, checks))
        out.mkdir(exist_ok=True)
        for name in sorted(REPORT_FILES - {f.name for f in stage.iterdir()}):  # an older report's, now stale
            (out / name).unlink(missing_ok=True)
        for file in sorted(stage.iterdir(), key=lambda f: f.name == "report.md"):  # report.md last
            os.replace(file, out / file.name)
    return out / "report.md"


def _plot(curves: dict[str, dict[str, list[float]]], path: Path, task: Task) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "state_error": "state error (std units)",
        "reward_error": "|reward error|",
        "psnr": "frame PSNR (dB, higher is better)",
        "ssim": "frame SSIM (higher is better)",
    }
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        for i, (source, curve) in enumerate(curves.items()):
            color = f"C{i}"
            ax.plot(curve["horizon"], curve[metric], color=color, label=f"DreamSim, {source} actions")
            baseline = curve[f"{metric}_copy_last"]
            ax.plot(curve["horizon"], baseline, color=color, linestyle="--", label=f"copy-last, {source} actions")
        ax.set_title(titles[metric])
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("horizon (agent steps)")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"{task.gym_id}: DreamSim against MuJoCo from matched real states")
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


def _video(rollouts: list[Rollout], path: Path, scale: int = 3) -> None:
    frames: list[np.ndarray] = []
    for source in dict.fromkeys(r.source for r in rollouts):
        for r in [r for r in rollouts if r.source == source][:VIDEO_ROLLOUTS]:
            for real, pred in zip(r.real_frames[1:], r.pred_frames, strict=True):
                diff = np.abs(real.astype(np.int16) - pred.astype(np.int16)).astype(np.uint8)
                frames.append(np.concatenate([real, pred, diff], 1))
            frames.extend([np.zeros_like(frames[-1])] * 3)  # a short black gap between rollouts
    video = [np.kron(f, np.ones((scale, scale, 1), np.uint8)) for f in frames]
    write_atomic(path, lambda p: imageio.mimwrite(p, video, format="FFMPEG", fps=10, macro_block_size=1))  # type: ignore[arg-type]


def _markdown(task: Task, report: dict[str, Any], checks: list[Check]) -> str:
    matched = report["matched"]
    lines = [
        f"# DreamSim validation: {task.gym_id}",
        "",
        f"Checkpoint: `{report['checkpoint']}`",
    ]
    if "agent" in report:
        lines += ["", _agent_markdown(report["agent"])]
    lines += [
        "",
        checks_markdown(task, checks, report["checks"]["unchecked_horizons"]),
        "",
        "## Fidelity from matched real states",
        "",
        f"{matched['starts']} start states from real episodes ({matched['behaviour']} behaviour); at each, MuJoCo "
        "restores the recorded qpos/qvel and DreamSim filters the same real context, then both roll the same "
        "actions. Copy-last keeps the start observation (and the last real reward). Mean over the rollouts "
        "still running at each horizon (`n`).",
        "",
        "![errors against horizon](errors.png)",
        "",
        "Video: `rollouts.mp4` (MuJoCo | DreamSim | difference), the first "
        f"{VIDEO_ROLLOUTS} rollouts of each action source in turn.",
    ]
    for source, curve in matched["curves"].items():
        lines += [
            "",
            f"### {source} actions",
            "",
            "| horizon | n | state error (std) | copy-last | reward error | copy-last "
            "| PSNR (dB) | copy-last | SSIM | copy-last |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for h in task.horizons:
            if h <= len(curve["horizon"]):
                i = h - 1
                cells = [f"{curve[m][i]:.3f} | {curve[m + '_copy_last'][i]:.3f}" for m in ("state_error", "reward_error")]
                cells += [f"{curve['psnr'][i]:.2f} | {curve['psnr_copy_last'][i]:.2f}"]
                cells += [f"{curve['ssim'][i]:.3f} | {curve['ssim_copy_last'][i]:.3f}"]
                lines.append(f"| {h} | {int(curve['count'][i])} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Transfer gap",
        "",
        "The same agent from the same real start state in both worlds; returns as mean ± 95% CI over "
        f"{len(next(iter(report['transfer'].values()))['real_returns'])} paired episodes; gap = DreamSim - MuJoCo.",
        "",
        "| agent | return in MuJoCo | return in DreamSim | gap |",
        "|---|---|---|---|",
    ]
    for name, t in report["transfer"].items():
        lines.append(
            f"| {name} | {plus_minus(t['real_mean'], t['real_ci95'])} | {plus_minus(t['dream_mean'], t['dream_ci95'])} "
            f"| {plus_minus(t['gap_mean'], t['gap_ci95'], '+.2f')} |"
        )
    if "heldout" in report:
        held = report["heldout"]
        lines += [
            "",
            f"## Open-loop fidelity on {held['episodes']} held-out real episodes ({held['real_steps']} steps)",
            "",
            _heldout_markdown(task, held),
        ]
    return "\n".join(lines) + "\n"


def _agent_markdown(agent: dict[str, Any]) -> str:
    rows = [("SAC trained in DreamSim only", agent["trained"]), ("random actions", agent["random"])]
    rows.append(("constant middle action", agent["constant"]))
    table = "\n".join(f"| {name} | {plus_minus(r['return_mean'], r['return_ci95'])} |" for name, r in rows)
    return (
        "## An agent trained in imagination, run in MuJoCo\n\n"
        f"SAC trained for {agent['dream_steps']} DreamSim steps and no real ones; returns over "
        f"{agent['episodes']} real episodes (mean ± 95% CI). Policy: `{agent['policy']}`\n\n"
        "| policy | return in MuJoCo |\n|---|---|\n"
        f"{table}"
    )
