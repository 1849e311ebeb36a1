"""The task card's validation thresholds, checked against a report's fidelity tables.

A check compares DreamSim with the copy-last baseline at one horizon of one table (the matched-state
rollouts of each action source, and the held-out open-loop fidelity when the report has it):

- state: DreamSim's state error is at most ``max_state_error_ratio`` times copy-last's;
- frame: DreamSim's frame PSNR is at least copy-last's plus ``min_psnr_gain`` dB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dreamsim.tasks import Task

HELDOUT = "held-out open-loop"  # the table of the held-out episodes' open-loop rows


@dataclass(frozen=True)
class Check:
    """One threshold at one horizon: ``value`` must be at most (``state_error``) or at least
    (``psnr``) ``limit``, which the card derives from ``copy_last``."""

    table: str  # "matched, random actions", "held-out open-loop", ...
    horizon: int
    metric: str  # "state_error" or "psnr"
    value: float
    copy_last: float
    limit: float
    count: int | None = None  # matched rollouts still running at this horizon (None: held-out episodes)

    @property
    def passed(self) -> bool:
        return self.value <= self.limit if self.metric == "state_error" else self.value >= self.limit


def _pair(task: Task, table: str, h: int, values: dict[str, float], count: int | None = None) -> list[Check]:
    state, psnr = values["state_error_copy_last"], values["psnr_copy_last"]
    return [
        Check(table, h, "state_error", values["state_error"], state, task.max_state_error_ratio * state, count),
        Check(table, h, "psnr", values["psnr"], psnr, psnr + task.min_psnr_gain, count),
    ]


def fidelity_checks(task: Task, curves: dict[str, dict[str, list[float]]], heldout: dict[str, Any] | None = None) -> list[Check]:
    """The checks at each of the card's horizons that a table reaches. ``curves``: ``horizon_curves``
    of the matched rollouts; ``heldout``: ``fidelity`` metrics of held-out real episodes."""
    keys = ("state_error", "state_error_copy_last", "psnr", "psnr_copy_last")
    checks: list[Check] = []
    for source, curve in curves.items():
        for h in task.horizons:
            if h <= len(curve["horizon"]):
                values = {k: curve[k][h - 1] for k in keys}
                checks += _pair(task, f"matched, {source} actions", h, values, int(curve["count"][h - 1]))
    for h in task.horizons:
        if heldout is not None and f"open_loop/{h}/psnr" in heldout:
            checks += _pair(task, HELDOUT, h, {k: heldout[f"open_loop/{h}/{k}"] for k in keys})
    return checks


def unchecked_horizons(
    task: Task, curves: dict[str, dict[str, list[float]]], heldout: dict[str, Any] | None = None
) -> dict[str, list[int]]:
    """Per table (arguments as for :func:`fidelity_checks`), the card's horizons it has no numbers
    for: matched rollouts are at most ``--horizon`` steps long and stop where the real episode
    terminates; held-out episodes may be shorter than a horizon."""
    missing = {f"matched, {s} actions": [h for h in task.horizons if h > len(c["horizon"])] for s, c in curves.items()}
    if heldout is not None:
        missing[HELDOUT] = [h for h in task.horizons if f"open_loop/{h}/psnr" not in heldout]
    return {table: horizons for table, horizons in missing.items() if horizons}


def describe(check: Check) -> str:
    """``matched, random actions, h=5, state error 0.61 > 0.45`` (one line for logs)."""
    name, relation = ("state error", ">") if check.metric == "state_error" else ("PSNR", "<")
    relation = ("<=" if relation == ">" else ">=") if check.passed else relation
    return f"{check.table}, h={check.horizon}, {name} {check.value:.3f} {relation} {check.limit:.3f}"


def checks_markdown(task: Task, checks: list[Check], unchecked: dict[str, list[int]] | None = None) -> str:
    """The report's verdict: how many checks passed, and a row per table and horizon holding its two
    checks (``n``: the matched rollouts still running there, on which the means rest). ``unchecked``:
    :func:`unchecked_horizons`."""
    passed = sum(c.passed for c in checks)
    lines = [
        "## Checks against the task card",
        "",
        f"{passed} of {len(checks)} passed, two per row: DreamSim's state error must be at most "
        f"{task.max_state_error_ratio:g} x copy-last's, and its frame PSNR at least copy-last's "
        f"{task.min_psnr_gain:+g} dB (`[validate]` in the {task.name} task card).",
    ]
    if unchecked:
        lines.append("")
    for table, horizons in (unchecked or {}).items():
        lines.append(
            f"- Not checked: {table} at horizon {', '.join(map(str, horizons))}, which "
            + (
                "the held-out episodes are too short for."
                if table == HELDOUT
                else "no rollout reached (they run at most `--horizon` steps and stop where the real episode terminates)."
            )
        )
    lines += [
        "",
        "| from | horizon | n | state error | limit | PSNR (dB) | limit | result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows: dict[tuple[str, int], list[Check]] = {}
    for c in checks:
        rows.setdefault((c.table, c.horizon), []).append(c)
    for (table, h), pair in rows.items():
        by = {c.metric: c for c in pair}
        state, psnr = by["state_error"], by["psnr"]
        failed = [name for name, c in (("state", state), ("frame", psnr)) if not c.passed]
        result = "pass" if not failed else "fail: " + ", ".join(failed)
        lines.append(
            f"| {table} | {h} | {'' if state.count is None else state.count} | {state.value:.3f} | ≤ {state.limit:.3f} "
            f"| {psnr.value:.2f} | ≥ {psnr.limit:.2f} | {result} |"
        )
    return "\n".join(lines)
