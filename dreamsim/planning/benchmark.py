"""The planning benchmark behind ``dreamsim plan``: real MuJoCo return (mean and 95% CI over episodes)
and milliseconds per action for planners on the learned model, on MuJoCo itself, and a random policy."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dreamsim.control import Agent, RandomAgent, evaluate
from dreamsim.device import describe_machine, resolve_device, result_kind
from dreamsim.files import display_path, write_json, write_text
from dreamsim.model.checkpoint import weights_sha256
from dreamsim.model.world_model import WorldModel
from dreamsim.planning.agents import MPCAgent, TrueSimMPCAgent
from dreamsim.planning.planner import planner_config
from dreamsim.stats import plus_minus
from dreamsim.tasks import DEFAULT_TASK, load_task, real_spaces

ROWS = ("random", "learned-cem", "learned-mppi", "true-cem", "true-mppi")


@dataclass(frozen=True)
class PlanBenchConfig:
    task: str = DEFAULT_TASK
    rows: tuple[str, ...] = ROWS
    episodes: int = 5
    max_steps: int | None = None  # cap on an episode's agent steps (default: the card's episode length)
    seed: int = 0
    cem_preset: str = "tdmpc2-cem"  # planet-cem, PlaNet's budget, takes seconds per action on a CPU
    mppi_preset: str = "tdmpc2-mppi"
    horizon: int | None = None  # planning horizon for every planner row (default: each preset's own)
    checkpoint: str | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        unknown = set(self.rows) - set(ROWS)
        if unknown:
            raise ValueError(f"unknown planning rows {sorted(unknown)}: choose from {ROWS}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1 (or left out for whole episodes), got {self.max_steps}")
        if self.episodes < 1:
            raise ValueError(f"episodes must be at least 1, got {self.episodes}")
        if self.horizon is not None and self.horizon < 1:
            raise ValueError(f"horizon must be at least 1 (or left out for each preset's own), got {self.horizon}")
        for row in set(self.rows) - {"random"}:  # checked before any row runs, not after earlier rows' minutes
            method = row.split("-")[1]
            found = planner_config(self.preset(method)).method
            if found != method:
                raise ValueError(f"row {row!r} needs a {method} preset, but {self.preset(method)!r} is {found}")

    def preset(self, method: str) -> str:
        """The planner preset of the ``cem`` or ``mppi`` rows."""
        return self.cem_preset if method == "cem" else self.mppi_preset


def _agent(row: str, cfg: PlanBenchConfig, model: WorldModel | None) -> tuple[Agent, str | None]:
    """The agent for one row and the planner preset it uses; ``model`` plans the learned rows."""
    card = load_task(cfg.task)
    action_space = real_spaces(card)[1]
    if row == "random":
        return RandomAgent(action_space, seed=cfg.seed), None
    source, method = row.split("-")
    preset = cfg.preset(method)
    planner = planner_config(preset) if cfg.horizon is None else planner_config(preset, horizon=cfg.horizon)
    if source == "true":
        return TrueSimMPCAgent(card, planner, seed=cfg.seed), preset
    assert model is not None
    return MPCAgent(model, action_space, planner, seed=cfg.seed), preset


def run(cfg: PlanBenchConfig, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate every row on the same episode seeds; returns the JSON-ready result."""
    card = load_task(cfg.task)
    checkpoint = None
    if any(row.startswith("learned") for row in cfg.rows):
        from dreamsim.model.checkpoint import load_for_task

        checkpoint = load_for_task(card, cfg.checkpoint, resolve_device(cfg.device))
    rows: dict[str, Any] = {}
    for row in cfg.rows:
        if progress is not None:
            progress(f"{row}:")
        agent, preset = _agent(row, cfg, None if checkpoint is None else checkpoint.model)
        start = time.perf_counter()
        episode_progress = None if progress is None else (lambda line: progress(f"  {line}"))
        try:
            result = evaluate(card, agent, cfg.episodes, cfg.seed, cfg.max_steps, progress=episode_progress)
        finally:
            if isinstance(agent, TrueSimMPCAgent):
                agent.close()
        rows[row] = {"preset": preset, **result, "seconds": time.perf_counter() - start}
    out: dict[str, Any] = {
        "task": card.name,
        "gym_id": card.gym_id,
        "config": asdict(cfg),
        "machine": describe_machine(),
        "device": "cpu" if checkpoint is None else str(resolve_device(cfg.device)),  # MuJoCo rows plan on the CPU
        "rows": rows,
    }
    if checkpoint is not None:  # the model the learned rows planned with
        out["checkpoint"] = {"path": display_path(checkpoint.path), "weights_sha256": weights_sha256(checkpoint.path)}
    # Share of the true-simulator planner's improvement over random that the learned model keeps.
    if "random" in rows:
        floor = rows["random"]["return_mean"]
        for method in ("cem", "mppi"):
            learned, true = rows.get(f"learned-{method}"), rows.get(f"true-{method}")
            if learned and true and true["return_mean"] != floor:
                out[f"kept_{method}"] = (learned["return_mean"] - floor) / (true["return_mean"] - floor)
    return out


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    cap = f", at most {cfg['max_steps']} steps each" if cfg["max_steps"] else ""
    horizon = cfg.get("horizon")  # absent from results written before it could be set

    def settings(preset: str | None) -> str:
        if preset is None:
            return "-"
        return preset if horizon is None else f"{preset}, horizon {horizon}"

    lines = [
        f"Planning on {result['gym_id']}: return in real MuJoCo over {cfg['episodes']} episodes "
        f"(seeds {cfg['seed']}..{cfg['seed'] + cfg['episodes'] - 1}{cap}), mean ± 95% CI; "
        f"planning on {result['device']}, {result['machine'].get('cpu_count', '?')} CPU cores.",
        "",
        "| planner | model | settings | return | ms / action |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        model = {"random": "none", "learned": "DreamSim", "true": "MuJoCo"}[name.split("-")[0]]
        method = name.split("-")[1].upper() if "-" in name else "random"
        lines.append(
            f"| {method} | {model} | {settings(row['preset'])} | {plus_minus(row['return_mean'], row['return_ci95'])} "
            f"| {row['ms_per_action']:.1f} |"
        )
    kept = [f"{m.upper()} {100 * result[f'kept_{m}']:.0f}%" for m in ("cem", "mppi") if f"kept_{m}" in result]
    if kept:
        lines += ["", "Share of the MuJoCo planner's gain over random kept by the DreamSim planner: " + ", ".join(kept) + "."]
    return "\n".join(lines) + "\n"


def write(result: dict[str, Any], out: str | Path) -> Path:
    """``planning-<task>[-h<horizon>]-<cpu|gpu>.json`` and ``.md`` under ``out`` (``-h<horizon>`` when
    the presets' horizon was overridden, so as not to replace their results); returns the JSON path."""
    kind = result_kind(result["device"])
    horizon = result["config"].get("horizon")
    stem = Path(out) / f"planning-{result['task']}{'' if horizon is None else f'-h{horizon}'}-{kind}"
    write_text(stem.with_suffix(".md"), markdown(result))
    return write_json(stem.with_suffix(".json"), result)
