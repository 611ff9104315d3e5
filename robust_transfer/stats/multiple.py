"""Combining tests: Holm-Bonferroni over the comparisons an aggregate makes, and intersection-union.

Holm (1979), "A simple sequentially rejective multiple test procedure": controls the family-wise
error rate under any dependence between the tests, which matters here because a language's test
and the average over languages share examples and seeds. Through statsmodels' `multipletests`.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence

import numpy as np
from statsmodels.stats.multitest import multipletests


def holm(p_values: Sequence[float | None]) -> list[float]:
    """Holm-adjusted p-values, in input order; None or nan entries stay nan and are not counted."""
    p = np.asarray([math.nan if v is None else float(v) for v in p_values], dtype=float)
    out = np.full(p.shape, math.nan)
    tested = ~np.isnan(p)
    if tested.any():
        # statsmodels' Holm branch calls gc.collect(), a full collection (0.25 s a call with matplotlib
        # loaded, one call per metric); frozen objects are skipped, and nothing here needs collecting
        gc.freeze()
        try:
            out[tested] = multipletests(p[tested], method="holm")[1]
        finally:
            gc.unfreeze()
    return [float(v) for v in out]


def intersection_union(*p_values: float) -> float:
    """The p-value of "every one of these tests rejects": the largest (Berger 1982, "Multiparameter
    hypothesis testing and acceptance sampling", Technometrics 24; Berger & Hsu 1996).

    An aggregate claims a difference only when both the two-level bootstrap (which sees the test
    examples, and their effect shared across seeds) and the paired t-test over seeds (the
    small-sample reference for the seed level) reject; the intersection-union test is level alpha
    when each test is, with no correction. nan when any is nan (untested).
    """
    if any(p is None or math.isnan(p) for p in p_values):
        return math.nan
    return float(max(p_values))
