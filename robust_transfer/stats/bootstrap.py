"""The two-level paired bootstrap: training seeds and test examples as the two sampling units.

A claim that configuration A beats baseline B must survive two sources of variance: the training
seed (another seed, another model) and the test sample (other examples from the same population).
Dror et al. (ACL 2018, "The Hitchhiker's Guide to Testing Statistical Significance in NLP") and
Dror et al. (ACL 2019, "Deep Dominance") make the point; pooling McNemar's discordant pairs over
seeds counts one test example once per seed, as if S seeds were S times as many examples.

**Design.** The input is, per statistic k (a split and language), the per-example paired
difference `diff[k, s, i]` of seed s on example i (for an accuracy: correct_A - correct_B; for a
degradation: the difference of the two (clean - perturbed) differences of the same example), with
`mask` saying which (s, i) were observed. One bootstrap replicate draws the seeds with replacement
(multinomial counts w_s) and the examples with replacement (counts v_i), and its statistic is

    theta*_k = sum_s sum_i w_s v_i diff[k, s, i] / sum_s sum_i w_s v_i mask[k, s, i],

the same example draw for both configurations (the difference is formed per example) and for
every resampled seed. Sharing the example draw across seeds is deliberate: every seed is evaluated
on the *same* test examples (seed x example is a crossed design, not a nested one), so an example
that favours A does so under every seed; drawing examples independently within each seed would
average that shared effect away and understate the example-level variance. This is Owen's (2007)
"pigeonhole" bootstrap for crossed random effects (Annals of Applied Statistics 1(2)), which is
mildly conservative; the nested two-stage scheme of Davison & Hinkley (1997, §3.8) is the special
case where the examples differ between seeds. Example ids are one unit across languages and splits
too (PAWS-X and the synthetic data are parallel: id k is one sentence pair translated, and a
perturbed example keeps its clean example's id), so the same draw serves every language, and the
average over languages resamples whole multilingual examples.

The CI is the percentile interval of theta*; the two-sided p-value is the shifted-null bootstrap
test of H0: theta = 0, p = (1 + #{|theta* - theta_hat| >= |theta_hat|}) / (1 + B) (Efron &
Tibshirani 1993, §16.4; the paired bootstrap of Koehn 2004 and Berg-Kirkpatrick et al. 2012 that
Dror et al. 2018 describe, made two-sided). With B = 10,000 the smallest p is about 1e-4.

**Why by hand.** `scipy.stats.bootstrap` and deepsig's `bootstrap_test` resample one level of
independent observations; neither resamples two crossed units with a shared draw. The replicates
are computed as one matrix product per comparison (counts x differences), which keeps an aggregate
of hundreds of comparisons within a few seconds; `tests/test_stats.py` checks it against a plain
loop over replicates.

**Small seed counts.** With S seeds the seed level has at most C(2S-1, S) distinct resamples (10
for S = 3) and its variance is the plug-in (S-1)/S of the sample variance, so with three seeds the
seed level of this interval is optimistic. The verdict therefore also asks ASO (`stats.aso`), a
test over the per-seed scores, to agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

RESAMPLES = 10_000


@dataclass(frozen=True)
class BootstrapResult:
    """A paired difference with its two-level percentile CI and two-sided bootstrap p-value."""

    estimate: float
    low: float
    high: float
    p_value: float
    resamples: int


@lru_cache(maxsize=2)
def _example_counts(seed: int, resamples: int, n: int) -> np.ndarray:
    """resamples x n multinomial counts (float32, exact for counts), shared by every comparison."""
    counts = np.random.default_rng([seed, 1]).multinomial(n, np.full(n, 1 / n), size=resamples).astype(np.float32)
    counts.flags.writeable = False
    return counts


def _seed_counts(seed: int, resamples: int, s: int) -> np.ndarray:
    return np.random.default_rng([seed, 0]).multinomial(s, np.full(s, 1 / s), size=resamples).astype(float)


def two_level_bootstrap(diff: np.ndarray, mask: np.ndarray | None = None, *,
                        averages: Mapping[str, Sequence[int]] | None = None, resamples: int = RESAMPLES,
                        level: float = 0.95, seed: int = 0) -> tuple[list[BootstrapResult], dict[str, BootstrapResult]]:
    """Bootstrap each statistic k of `diff` (K x S seeds x N examples) and each average of them.

    `averages` maps a name to the indices of statistics whose unweighted mean it is (e.g. the
    mean over languages). Returns (one result per k, {name: result}).
    """
    diff = np.asarray(diff, dtype=float)
    if diff.ndim != 3:
        raise ValueError(f"diff must be statistics x seeds x examples, got shape {diff.shape}")
    k, s, n = diff.shape
    full = mask is None or bool(np.all(mask))
    mask = np.ones(diff.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != diff.shape:
        raise ValueError(f"mask shape {mask.shape} differs from diff shape {diff.shape}")
    diff = np.where(mask, diff, 0.0)
    observed = mask.sum(axis=(1, 2))
    if (observed == 0).any():
        raise ValueError("every statistic needs at least one observed (seed, example) pair")
    theta_hat = diff.sum(axis=(1, 2)) / observed

    # per replicate b: A[b, k, s] = sum_i v[b, i] diff[k, s, i]; then weight the seeds with w[b, s].
    # float32 products are exact for the paired differences of correct answers (integers -2..2) while
    # the sums stay below 2**24; the counts matrix (resamples x examples) is 40 MB for 1000 examples.
    v = _example_counts(int(seed), resamples, n)
    w = _seed_counts(int(seed), resamples, s)
    numerator = np.einsum("bks,bs->bk", (v @ diff.reshape(k * s, n).T.astype(np.float32)).reshape(resamples, k, s), w)
    if full:
        denominator = (w.sum(axis=1) * n)[:, None]  # = s * n for every replicate
    else:
        seen = (v @ mask.reshape(k * s, n).T.astype(np.float32)).reshape(resamples, k, s)
        denominator = np.einsum("bks,bs->bk", seen, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = numerator / denominator  # nan where a replicate drew no observed pair

    def result(estimate: float, replicates: np.ndarray) -> BootstrapResult:
        r = replicates[~np.isnan(replicates)]
        if r.size == 0:
            return BootstrapResult(float(estimate), math.nan, math.nan, math.nan, 0)
        low, high = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
        extreme = int(np.count_nonzero(np.abs(r - estimate) >= abs(estimate)))
        return BootstrapResult(float(estimate), float(low), float(high), (1 + extreme) / (1 + r.size), int(r.size))

    per_stat = [result(theta_hat[j], theta[:, j]) for j in range(k)]
    avg = {name: result(float(theta_hat[list(idx)].mean()), theta[:, list(idx)].mean(axis=1))
           for name, idx in (averages or {}).items()}
    return per_stat, avg
