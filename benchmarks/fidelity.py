"""Fidelity benchmark: open-loop errors of every shipped model on held-out real episodes, against copy-last.

    python benchmarks/fidelity.py                     # tables from assets/<task>/fidelity.json
    MUJOCO_GL=egl python benchmarks/fidelity.py --rescore reacher   # score again first (episodes/<task>-heldout)

Each model's numbers come from `dreamsim validate <task> --episodes episodes/<task>-heldout` (the
model card's recipe). Writes benchmarks/results/fidelity.json and fidelity.md (the README's table);
the last column is the task card's check of each open-loop row (`[validate]` thresholds).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from dreamsim.device import describe_machine
from dreamsim.files import write_json, write_text
from dreamsim.resources import assets_dir
from dreamsim.tasks import list_tasks, load_task
from dreamsim.validation.checks import fidelity_checks

RESULTS = Path("benchmarks/results")


def _rescore(task: str, device: str) -> None:
    from dreamsim.validation.report import heldout_fidelity, resolve_target

    card, ckpt = resolve_target(task, device)
    metrics = heldout_fidelity(card, ckpt, f"episodes/{task}-heldout")
    metrics["checkpoint"] = f"assets/{task}"
    metrics["machine"] = describe_machine()
    write_json(assets_dir() / task / "fidelity.json", metrics)


def markdown(results: dict[str, dict]) -> str:
    rows = [
        "| task | held-out episodes (steps) | horizon | state error (std) | copy-last "
        "| frame PSNR (dB) | copy-last | card check |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, m in results.items():
        failed: dict[int, list[str]] = {}
        for c in fidelity_checks(load_task(task), {}, m):
            failed.setdefault(c.horizon, []).extend([] if c.passed else ["state" if c.metric == "state_error" else "frame"])
        if "cold_start/psnr" in m:  # one step from a single real observation, at every step of the episodes
            rows.append(
                f"| {task} | {m['episodes']} ({m['real_steps']:,}) | 1, from one observation at any step "
                f"| {m['cold_start/state_error']:.3f} | {m['one_step/state_error_copy_last']:.3f} "
                f"| {m['cold_start/psnr']:.2f} | {m['one_step/psnr_copy_last']:.2f} | |"
            )
        for h in load_task(task).horizons:
            key = f"open_loop/{h}"
            if f"{key}/psnr" in m:
                rows.append(
                    f"| {task} | {m['episodes']} ({m['real_steps']:,}) | {h} | {m[f'{key}/state_error']:.3f} "
                    f"| {m[f'{key}/state_error_copy_last']:.3f} | {m[f'{key}/psnr']:.2f} | {m[f'{key}/psnr_copy_last']:.2f} "
                    f"| {'fail: ' + ', '.join(failed[h]) if failed[h] else 'pass'} |"
                )
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rescore", nargs="+", default=[], metavar="TASK", help="score these shipped models again first")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    for task in args.rescore:
        _rescore(task, args.device)
    shipped = [t for t in list_tasks() if (assets_dir() / t / "fidelity.json").is_file()]
    results = {t: json.loads((assets_dir() / t / "fidelity.json").read_text()) for t in shipped}
    for task, metrics in results.items():  # the card's checks as the table shows them
        metrics["card_checks"] = [{**asdict(c), "passed": c.passed} for c in fidelity_checks(load_task(task), {}, metrics)]
    write_json(RESULTS / "fidelity.json", results)
    table = markdown(results)
    write_text(RESULTS / "fidelity.md", table)
    print(table)


if __name__ == "__main__":
    main()
