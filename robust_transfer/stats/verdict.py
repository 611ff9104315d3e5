"""One comparison's reading in plain words, from the two-level bootstrap, Holm and ASO.

A claim ("reduces degradation", "raises accuracy", ...) needs all three of:
- the Holm-corrected p-value below `ALPHA`, where p is the larger of the two-level bootstrap's
  (examples and seeds as units) and the paired t-test's over seeds (the small-sample reference for
  the seed level): an intersection-union test, corrected for every comparison of the same metric
  in the aggregate (Holm 1979). tests/test_stats.py shows why both: with three seeds either alone
  rejects a true null 13% of the time in one regime or the other, both together at most 4%;
- the two-level 95% CI on the claimed side of zero (so the interval and the test never disagree);
- ASO's epsilon_min for "better in the claimed direction" below 0.2, deepsig's recommended threshold
  (Ulmer et al. 2022), with deepsig's Bonferroni adjustment for the same number of comparisons: with
  few seeds the seed level of the bootstrap is weak, and ASO asks the per-seed scores themselves.
Anything else is "no evidence either way": a difference not shown, not a difference shown absent.
"""

from __future__ import annotations

import math

from robust_transfer.stats.aso import THRESHOLD

ALPHA = 0.05
NO_EVIDENCE = "no evidence either way"
WORDS = {
    "degradation": ("reduces degradation", "increases degradation"),
    "accuracy": ("raises accuracy", "lowers accuracy"),
}


def verdict(metric: str, low: float, high: float, p_holm: float, eps_better: float, eps_worse: float,
            alpha: float = ALPHA, threshold: float = THRESHOLD) -> str:
    """`metric` is accuracy/<split> or degradation/<split>; for degradation lower is better.

    eps_better / eps_worse: ASO's epsilon_min for "the configuration is better than the baseline"
    and for "the baseline is better", each already oriented (negated scores for degradation).
    """
    family = metric.split("/", 1)[0]
    better_word, worse_word = WORDS.get(family, ("better", "worse"))
    if any(x is None or math.isnan(x) for x in (low, high, p_holm)) or p_holm >= alpha:
        return NO_EVIDENCE
    lower_is_better = family == "degradation"
    below, above = high < 0, low > 0
    better, worse = (below, above) if lower_is_better else (above, below)
    if better and eps_better < threshold:
        return better_word
    if worse and eps_worse < threshold:
        return worse_word
    return NO_EVIDENCE
