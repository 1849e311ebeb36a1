"""``dreamsim validate``: held-out fidelity of a checkpoint, as JSON and a Markdown table."""

from __future__ import annotations

import json
from pathlib import Path

from dreamsim.data.store import EpisodeStore
from dreamsim.device import resolve_device
from dreamsim.files import write_text
from dreamsim.model.checkpoint import load_checkpoint, read_config
from dreamsim.sim.batch import load_for_task
from dreamsim.tasks import list_tasks, load_task
from dreamsim.training.evaluation import fidelity, fidelity_table


def fidelity_report(target: str, episodes: str | Path, out: str | Path | None = None, device: str = "auto") -> Path:
    """Score ``target`` (a task's shipped checkpoint, or a checkpoint folder) on the real episodes
    in ``episodes``; writes ``fidelity.json`` and ``fidelity.md`` into ``out`` and returns the latter."""
    dev = resolve_device(device)
    if target in list_tasks():
        task = load_task(target)
        ckpt = load_for_task(task, None, dev)
    else:
        task = load_task(read_config(target)["task"])
        ckpt = load_checkpoint(target, dev)
    store = EpisodeStore(episodes)
    if len(store) == 0:
        raise ValueError(f"no episodes in {episodes}: collect held-out ones with `dreamsim collect {task.name} --out DIR`")
    eps = list(store.episodes())
    metrics = fidelity(ckpt.model, eps, task.horizons)
    horizons = tuple(h for h in task.horizons if f"open_loop/{h}/psnr" in metrics)
    metrics["checkpoint"] = str(ckpt.path)
    metrics["episode_folder"] = str(episodes)
    metrics["real_steps"] = int(sum(len(e) for e in eps))
    out = Path(out or f"reports/{task.name}")
    write_text(out / "fidelity.json", json.dumps(metrics, indent=2) + "\n")
    text = (
        f"# Fidelity of {ckpt.path} on {metrics['episodes']} held-out {task.gym_id} episodes\n\n"
        f"{fidelity_table(metrics, horizons)}\n\n"
        "Open-loop: from each episode's first real observation, the episode's actions alone; "
        "copy-last: the step-0 (open-loop) or previous (one-step) real observation. "
        "State error: RMS over dimensions, in units of each dimension's std.\n"
    )
    return write_text(out / "fidelity.md", text)
