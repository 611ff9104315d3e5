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
  only on (seed, B, len(a), len(b)) and are cached;
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


@lru_cache(maxsize=8)
def _uniform_draws(seed: int, iterations: int, n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """deepsig's per-iteration draws: np.random.seed(seed + k); uniform(n_a); uniform(n_b)."""
    ua, ub = np.empty((iterations, n_a)), np.empty((iterations, n_b))
    for k in range(iterations):
        rs = np.random.RandomState(seed + k + 1)  # the legacy generator np.random.seed() seeds
        ua[k] = rs.uniform(0, 1, n_a)
        ub[k] = rs.uniform(0, 1, n_b)
    ua.flags.writeable = ub.flags.writeable = False
    return ua, ub


def _quantile_index(p: np.ndarray, n: int) -> np.ndarray:
    """deepsig's empirical quantile function: sorted[clip(ceil(n p) - 1, 0, n - 1)]."""
    return np.clip(np.ceil(n * p).astype(int) - 1, 0, n - 1)


def _violation_ratios(samples_a: np.ndarray, samples_b: np.ndarray, dt: float) -> np.ndarray:
    """compute_violation_ratio for each row of samples_a / samples_b (deepsig's eq. 4-5)."""
    t = np.arange(dt, 1, dt)
    f = np.sort(samples_a, axis=1)[:, _quantile_index(t, samples_a.shape[1])]
    g = np.sort(samples_b, axis=1)[:, _quantile_index(t, samples_b.shape[1])]
    diff = g - f
    wasserstein = np.sum(diff**2 * dt, axis=1)
    diff = np.where(f >= g, 0.0, diff)
    violation = np.sum(diff[:, 1:] ** 2 * dt, axis=1)
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
    observed = float(_violation_ratios(a[None, :], b[None, :], dt)[0])
    ua, ub = _uniform_draws(int(seed), num_bootstrap_iterations, a.size, b.size)
    samples = _violation_ratios(np.sort(a)[_quantile_index(ua, a.size)], np.sort(b)[_quantile_index(ub, b.size)], dt)
    const = np.sqrt(a.size * b.size / (a.size + b.size))
    sigma = np.std(const * (samples - observed))
    return float(np.clip(observed - (1 / const) * sigma * norm.ppf(1 - confidence_level), 0, 1))
