"""Means over seeds with a confidence interval (Student t, or a percentile bootstrap over seeds).

These describe one configuration across its seeds (groups.csv). They treat the seed as the only
sampling unit, which is right for a per-seed score such as one run's accuracy; the paired comparison
of two configurations, where test examples are a second unit, is `stats.bootstrap`'s job."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with a confidence interval (nan bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


def mean_ci(values: Sequence[float], level: float = 0.95, method: str = "t", seed: int = 0, resamples: int = 10_000) -> Estimate:
    """Mean and a `level` confidence interval: Student t (default) or percentile bootstrap."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    m = float(x.mean())
    if n < 2:
        return Estimate(m, math.nan, math.nan, n)
    if method == "t":
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
        return Estimate(m, m - half, m + half, n)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = x[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
        lo, hi = np.quantile(means, [0.5 - level / 2, 0.5 + level / 2])
        return Estimate(m, float(lo), float(hi), n)
    raise ValueError(f"unknown CI method {method!r}: use t or bootstrap")


def paired_diff_ci(a: Sequence[float], b: Sequence[float], **kwargs) -> Estimate:
    """Mean and CI of a - b over paired observations (the same seeds)."""
    if len(a) != len(b):
        raise ValueError("paired samples must have the same length")
    return mean_ci([x - y for x, y in zip(a, b, strict=True)], **kwargs)


def paired_t_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired Student t-test over seeds (scipy's ttest_rel, df = n - 1).

    The seed-level test beside the two-level bootstrap: with three seeds a bootstrap over seeds has
    10 distinct resamples and a plug-in variance, and rejects a true "no difference" far more often
    than 5% when the seed is the main source of variance; Student t with n - 1 degrees of freedom is
    the small-sample reference (`stats.multiple.intersection_union` combines the two). Identical
    differences on every seed give p = 0 when they are not zero and p = 1 when they are (scipy
    returns nan there); fewer than two seeds give nan.
    """
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size < 2:
        return math.nan
    if np.allclose(d, d[0], rtol=0, atol=1e-12):
        return 1.0 if abs(d[0]) <= 1e-12 else 0.0
    from scipy import stats

    return float(stats.ttest_rel(a, b).pvalue)
