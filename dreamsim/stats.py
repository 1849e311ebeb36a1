"""Confidence intervals for small samples of episode returns."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; beyond, the Cornish-Fisher
# expansion around the normal's 1.96, within 0.001 of the exact quantile there.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip
_Z95 = 1.959964


def t95(df: int) -> float:
    """The two-sided 95% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"Student's t needs at least 1 degree of freedom, got {df}")
    if df <= len(_T95):
        return _T95[df - 1]
    z = _Z95
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_ci95(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t confidence interval (NaN for a single value:
    one sample says nothing of its spread)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("mean_ci95 needs at least one value")
    if x.size == 1:
        return float(x[0]), float("nan")
    return float(x.mean()), float(t95(x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))


def plus_minus(mean: float, ci: float | None, spec: str = ".2f") -> str:
    """``mean ± ci`` for a table, each in the format ``spec``; the mean alone where there is no
    interval (one episode: NaN in memory, ``null`` in JSON)."""
    if ci is None or not math.isfinite(ci):
        return f"{mean:{spec}}"
    return f"{mean:{spec}} ± {ci:{spec.lstrip('+')}}"
