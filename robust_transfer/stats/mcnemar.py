"""McNemar's exact test for one seed's paired predictions (statsmodels).

Within one seed the two configurations are two fixed trained models answering the same test
examples, so the example is the unit and McNemar's test is the right one (Dror et al. 2018, §3:
McNemar for paired binary outcomes; Dietterich 1998). It answers a seed-conditional question: do
*these two models* differ on this test sample. It says nothing about the training seed, so it is
run and reported per seed, never pooled over seeds (a test example repeated across seeds is not a
new example); the claim about the configurations is `stats.bootstrap`'s and `stats.aso`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar as _statsmodels_mcnemar


@dataclass(frozen=True)
class McNemar:
    """Discordant pairs: b = only the first model right, c = only the second; exact p-value."""

    b: int
    c: int
    p_value: float


def mcnemar(first_correct: Sequence[bool], second_correct: Sequence[bool]) -> McNemar:
    """McNemar's exact test on two models' per-example correctness (same examples, same order)."""
    f = np.asarray(first_correct, dtype=bool)
    s = np.asarray(second_correct, dtype=bool)
    if f.shape != s.shape:
        raise ValueError(f"paired predictions must have the same length, got {f.shape} and {s.shape}")
    both, neither = int((f & s).sum()), int((~f & ~s).sum())
    b, c = int((f & ~s).sum()), int((~f & s).sum())
    return McNemar(b, c, mcnemar_p(b, c, both, neither))


def mcnemar_p(b: int, c: int, both: int = 0, neither: int = 0) -> float:
    """statsmodels' exact McNemar p-value (binomial on the b + c discordant pairs, two-sided)."""
    table = [[both, b], [c, neither]]
    return float(_statsmodels_mcnemar(table, exact=True).pvalue)
