"""Almost stochastic order (ASO) of two configurations' per-seed scores: `deepsig.aso`, vectorized.

ASO (del Barrio et al. 2018; Dror et al., ACL 2019, "Deep Dominance"; implementation and
recommendations: Ulmer et al. 2022, `deepsig`) compares two *distributions over seeds*: it returns
epsilon_min, an upper bound (at `confidence_level`) on how far the configuration's score
distribution is from stochastically dominating the baseline's. epsilon_min = 0 means every quantile
of the configuration is above the baseline's; deepsig's documented reading is "A is better than B
if epsilon_min < 0.5, and check epsilon_min < 0.2" (`THRESHOLD`, the one the verdict uses).
Scores are "higher is better"; for degradation pass the negated scores (deepsig's own advice).

**Why not call `deepsig.aso` directly.** It is the reference and it is what the tests compare with,
on the same arrays and seed, to 1e-12. But it runs its 1000 bootstrap iterations one by one through
joblib and an `np.vectorize`d quantile function: about 4 s a call on this machine, and an aggregate
makes hundreds of comparisons (the research sweep: 8 comparisons x 5 metrics x 8 languages, twice
for both directions), against a budget of a few seconds. This function computes the same thing with
the same random draws, vectorized over the iterations:

- the violation ratio (observed and bootstrapped) is deepsig's `compute_violation_ratio`, with its
  `np.vectorize`d quantile function replaced by array indexing (the same indices);
- bootstrap iteration k (k = 1..B) seeds NumPy's legacy global generator with `seed + k` and draws
  `uniform(0, 1, len(a))` then `uniform(0, 1, len(b))`, exactly as deepsig does; these draws depend
  only on (seed, B, len(a), len(b)), so the positions they pick are computed once and cached;
- the quantile function, the integration grid `arange(dt, 1, dt)`, the violation integral (which
  skips the first grid point, as deepsig does), the 0.5 fallback when the Wasserstein distance is 0,
  sigma and the Bonferroni-adjusted confidence level (`num_comparisons`) are deepsig's.

It departs in one way: `seed=None` (deepsig's unseeded default) is not accepted; an aggregate is
reproducible. `engine="deepsig"` calls `deepsig.aso` itself instead (`--aso deepsig` in the
aggregate), for anyone who wants the library's own numbers at its own speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy.stats import norm

THRESHOLD = 0.2  # deepsig's recommendation: claim "A better than B" only when epsilon_min < 0.2


def _quantile_index(p: np.ndarray, n: int) -> np.ndarray:
    """deepsig's empirical quantile function: sorted[clip(ceil(n p) - 1, 0, n - 1)]."""
    return np.clip(np.ceil(n * p).astype(int) - 1, 0, n - 1)


@lru_cache(maxsize=8)
def _bootstrap_positions(seed: int, iterations: int, n_a: int, n_b: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Per bootstrap iteration, which element of sorted(a) (of sorted(b)) deepsig's quantile
    function of the resampled scores returns at each grid point t.

    Iteration k draws deepsig's numbers: np.random.seed(seed + k), uniform(n_a), uniform(n_b). The
    resample is sorted(a)[idx]; sorting a resample of a sorted array is sorting its indices, so
    the quantiles of the resample at the grid are sorted(a)[sort(idx)[grid index]], fixed by
    (seed, iterations, n_a, n_b, dt) alone and shared by every call with those.
    """
    ia, ib = np.empty((iterations, n_a), dtype=int), np.empty((iterations, n_b), dtype=int)
    for k in range(iterations):
        rs = np.random.RandomState(seed + k + 1)  # the legacy generator np.random.seed() seeds
        ia[k] = _quantile_index(rs.uniform(0, 1, n_a), n_a)
        ib[k] = _quantile_index(rs.uniform(0, 1, n_b), n_b)
    t = np.arange(dt, 1, dt)
    pa = np.sort(ia, axis=1)[:, _quantile_index(t, n_a)]
    pb = np.sort(ib, axis=1)[:, _quantile_index(t, n_b)]
    pa.flags.writeable = pb.flags.writeable = False
    return pa, pb


def _violation_ratios(f: np.ndarray, g: np.ndarray, dt: float) -> np.ndarray:
    """compute_violation_ratio (deepsig's eq. 4-5) per row, from the two quantile functions on the grid."""
    diff = g - f
    wasserstein = np.sum(diff**2 * dt, axis=1)
    diff = np.where(f >= g, 0.0, diff)
    violation = np.sum(diff[:, 1:] ** 2 * dt, axis=1)  # deepsig leaves the first grid point out
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(wasserstein == 0, 0.5, violation / wasserstein)


def aso(scores_a: Sequence[float], scores_b: Sequence[float], *, confidence_level: float = 0.95,
        num_comparisons: int = 1, num_bootstrap_iterations: int = 1000, dt: float = 0.005,
        seed: int = 0, engine: str = "vectorized") -> float:
    """epsilon_min of "A is almost stochastically larger than B"; equals deepsig.aso(..., seed=seed)."""
    if engine == "deepsig":
        import deepsig

        return float(deepsig.aso(scores_a, scores_b, confidence_level=confidence_level,
                                 num_comparisons=num_comparisons, num_bootstrap_iterations=num_bootstrap_iterations,
                                 dt=dt, seed=int(seed), show_progress=False))
    if engine != "vectorized":
        raise ValueError(f"unknown ASO engine {engine!r}: use vectorized or deepsig")
    a = np.asarray(scores_a, dtype=float)
    b = np.asarray(scores_b, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("Both lists of scores must be non-empty.")
    if num_comparisons < 1 or num_bootstrap_iterations < 1:
        raise ValueError("num_comparisons and num_bootstrap_iterations must be >= 1")
    if num_comparisons > 1:
        confidence_level += (1 - confidence_level) / num_comparisons
    sa, sb = np.sort(a), np.sort(b)
    t = np.arange(dt, 1, dt)
    observed = float(_violation_ratios(sa[None, _quantile_index(t, a.size)], sb[None, _quantile_index(t, b.size)], dt)[0])
    pa, pb = _bootstrap_positions(int(seed), num_bootstrap_iterations, a.size, b.size, dt)
    samples = _violation_ratios(sa[pa], sb[pb], dt)
    const = np.sqrt(a.size * b.size / (a.size + b.size))
    sigma = np.std(const * (samples - observed))
    return float(np.clip(observed - (1 / const) * sigma * norm.ppf(1 - confidence_level), 0, 1))
