"""Statistics for comparing configurations across seeds and test examples.

- `intervals`: a mean over seeds with its CI (one configuration, groups.csv), the paired t-test over seeds;
- `mcnemar`: the exact McNemar test on one seed's paired predictions (statsmodels);
- `bootstrap`: the two-level paired bootstrap over seeds and test examples (CI and p-value);
- `aso`: almost stochastic order of per-seed scores (deepsig's ASO, vectorized);
- `multiple`: Holm-Bonferroni over the comparisons an aggregate makes (statsmodels), intersection-union;
- `verdict`: the plain-words reading of one comparison.
"""

from robust_transfer.stats.aso import THRESHOLD as ASO_THRESHOLD
from robust_transfer.stats.aso import aso
from robust_transfer.stats.intervals import Estimate, mean_ci, paired_diff_ci, paired_t_p
from robust_transfer.stats.mcnemar import McNemar, mcnemar, mcnemar_p
from robust_transfer.stats.multiple import holm, intersection_union

__all__ = [
    "ASO_THRESHOLD", "Estimate", "McNemar", "aso", "holm", "intersection_union", "mcnemar", "mcnemar_p", "mean_ci",
    "paired_diff_ci", "paired_t_p",
]
