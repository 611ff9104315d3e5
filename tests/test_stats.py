"""The statistics against their references: statsmodels' McNemar and Holm, deepsig's ASO, and a plain
loop for the two-level bootstrap."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from robust_transfer.stats import (
    aso,
    holm,
    intersection_union,
    mcnemar,
    mcnemar_p,
    mean_ci,
    paired_diff_ci,
    paired_t_p,
)
from robust_transfer.stats.bootstrap import two_level_bootstrap
from robust_transfer.stats.verdict import NO_EVIDENCE, verdict


def test_t_interval_and_bootstrap():
    e = mean_ci([1.0, 2.0, 3.0])
    assert e.mean == 2.0 and e.n == 3
    assert e.high - 2.0 == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) * s / sqrt(n)
    b = mean_ci([1.0, 2.0, 3.0, 4.0], method="bootstrap")
    assert 1.0 <= b.low < 2.5 < b.high <= 4.0
    one = mean_ci([0.7])
    assert one.mean == 0.7 and math.isnan(one.low)
    d = paired_diff_ci([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert d.mean == pytest.approx(0.1) and d.low == pytest.approx(0.1) and d.high == pytest.approx(0.1)


def test_mcnemar_equals_statsmodels_exact():
    rng = np.random.default_rng(3)
    for n, flip in ((40, 0.1), (300, 0.3), (1000, 0.02)):
        first = rng.random(n) < 0.7
        second = np.where(rng.random(n) < flip, ~first, first)
        m = mcnemar(first, second)
        table = [[np.sum(first & second), np.sum(first & ~second)], [np.sum(~first & second), np.sum(~first & ~second)]]
        assert (m.b, m.c) == (table[0][1], table[1][0])
        assert m.p_value == sm_mcnemar(table, exact=True).pvalue
    assert mcnemar_p(10, 0) == pytest.approx(2 * 0.5**10)  # two-sided binomial on 10 discordant pairs
    assert mcnemar_p(5, 5) == 1.0 and mcnemar_p(0, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_holm_equals_statsmodels_and_skips_untested():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])  # Holm (1979) by hand
    out = holm([0.01, None, math.nan, 0.02])
    assert out[0] == pytest.approx(0.02) and out[3] == pytest.approx(0.02)  # m = 2: untested rows do not count
    assert math.isnan(out[1]) and math.isnan(out[2])


@pytest.mark.parametrize(
    ("a", "b", "kwargs"),
    [
        ([0.71, 0.74, 0.69], [0.70, 0.66, 0.72], {"seed": 0, "num_bootstrap_iterations": 100}),
        ([0.9, 0.6, 0.6], [0.65, 0.65, 0.65], {"seed": 1234, "num_bootstrap_iterations": 100, "num_comparisons": 64}),
        ([0.5, 0.52, 0.51, 0.58, 0.49], [0.41, 0.55, 0.47, 0.5], {"seed": 7, "num_bootstrap_iterations": 100}),
        ([0.3, 0.3, 0.3], [0.3, 0.3, 0.3], {"seed": 3, "num_bootstrap_iterations": 100}),  # ties: ratio 0.5
        ([-0.12, -0.30, -0.25], [-0.41, -0.38, -0.35], {"seed": 0}),  # the aggregate's defaults
    ],
)
def test_aso_equals_deepsig(a, b, kwargs):
    deepsig = pytest.importorskip("deepsig")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = deepsig.aso(a, b, show_progress=False, **kwargs)
    assert aso(a, b, **kwargs) == pytest.approx(reference, abs=1e-12)


def test_aso_engine_deepsig_is_the_library():
    pytest.importorskip("deepsig")
    a, b = [0.71, 0.74, 0.69], [0.70, 0.66, 0.72]
    assert aso(a, b, seed=2, num_bootstrap_iterations=50, engine="deepsig") == pytest.approx(
        aso(a, b, seed=2, num_bootstrap_iterations=50), abs=1e-12)
    with pytest.raises(ValueError):
        aso(a, b, engine="scipy")


def test_aso_reads_dominance():
    assert aso([0.8, 0.81, 0.82], [0.7, 0.71, 0.72]) == 0.0  # every seed better: no violation
    assert aso([0.7, 0.71, 0.72], [0.8, 0.81, 0.82]) > 0.99  # (the first grid point is left out of the integral)


def _plain_two_level(d, mask, resamples, rng):
    """The textbook loop: resample seeds, then the examples within them (one draw, shared by the
    resampled seeds and both configurations), and take the mean paired difference."""
    s, n = d.shape[1:]
    out = np.empty((resamples, d.shape[0]))
    for r in range(resamples):
        seeds = rng.integers(0, s, s)
        examples = rng.integers(0, n, n)
        sub_d = d[:, seeds][:, :, examples]
        sub_m = mask[:, seeds][:, :, examples]
        out[r] = (sub_d * sub_m).sum(axis=(1, 2)) / sub_m.sum(axis=(1, 2))
    return out


@pytest.fixture
def crossed_differences():
    """Two statistics over 4 seeds x 150 examples: a seed effect, an example effect shared by the
    seeds (the crossed design), and noise; the second has about a fifth of its cells missing."""
    rng = np.random.default_rng(11)
    s, n = 4, 150
    seed_effect = np.array([0.06, -0.02, 0.03, 0.01])
    example_effect = rng.normal(0, 0.4, n)
    d = np.stack([seed_effect[:, None] + example_effect[None, :] + rng.normal(0, 0.5, (s, n)) for _ in range(2)])
    mask = np.ones_like(d, dtype=bool)
    mask[1] = rng.random((s, n)) > 0.2
    return d, mask


def test_two_level_bootstrap_agrees_with_a_plain_loop(crossed_differences):
    d, mask = crossed_differences
    resamples = 4000
    per, avg = two_level_bootstrap(d, mask, averages={"both": [0, 1]}, resamples=resamples, seed=5)
    plain = _plain_two_level(d, mask, resamples, np.random.default_rng(99))
    plain_avg = plain.mean(axis=1)
    for k, r in enumerate([*per, avg["both"]]):
        theta = plain[:, k] if k < 2 else plain_avg
        estimate = (d[k] * mask[k]).sum() / mask[k].sum() if k < 2 else np.mean([per[0].estimate, per[1].estimate])
        assert r.estimate == pytest.approx(estimate, abs=1e-12) and r.resamples == resamples
        se = theta.std()
        # Monte Carlo error of a 2.5% / 97.5% quantile with 4000 draws is about 0.05 se; allow 0.25 se
        assert r.low == pytest.approx(np.quantile(theta, 0.025), abs=0.25 * se)
        assert r.high == pytest.approx(np.quantile(theta, 0.975), abs=0.25 * se)
        p_plain = (1 + np.sum(np.abs(theta - estimate) >= abs(estimate))) / (1 + resamples)
        assert r.p_value == pytest.approx(p_plain, abs=0.04)  # MC sd of p is at most 0.008 here
    # the example level matters: the interval is wider than the seed level alone gives
    seed_only = d[0].mean(axis=1)
    assert per[0].high - per[0].low > 2 * 1.96 * seed_only.std() / math.sqrt(4)


def test_two_level_bootstrap_edge_cases():
    zero = np.zeros((1, 3, 20))
    (r,), _ = two_level_bootstrap(zero, resamples=500)
    assert (r.estimate, r.low, r.high, r.p_value) == (0.0, 0.0, 0.0, 1.0)
    sure = np.ones((1, 3, 20))  # the configuration right on every example where the baseline is wrong
    (r,), _ = two_level_bootstrap(sure, resamples=500)
    assert r.p_value == pytest.approx(1 / 501) and r.low == r.high == 1.0
    with pytest.raises(ValueError):
        two_level_bootstrap(np.zeros((3, 20)))
    with pytest.raises(ValueError):
        two_level_bootstrap(zero, np.zeros_like(zero, dtype=bool))


def test_paired_t_and_intersection_union():
    a, b = [0.71, 0.74, 0.69], [0.70, 0.66, 0.72]
    assert paired_t_p(a, b) == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert paired_t_p([0.8, 0.8], [0.7, 0.7]) == 0.0 and paired_t_p([0.7, 0.7], [0.7, 0.7]) == 1.0
    assert math.isnan(paired_t_p([0.7], [0.6]))
    assert intersection_union(0.01, 0.2) == 0.2 and math.isnan(intersection_union(0.01, math.nan))


def _null_rejections(rng, sims, seed_sd, shared_sd, n=200, resamples=500):
    """False-rejection rates at 0.05 of the bootstrap alone, the t-test alone and both, when the
    two configurations are equal in distribution: 3 seeds, a seed effect (logit sd `seed_sd`) and
    a per-example effect shared by the seeds with mean zero (sd `shared_sd`, +/- on a random half)."""
    boot = t = both = 0
    for sim in range(sims):
        difficulty = rng.normal(0, 1, n)
        shared = rng.normal(0, shared_sd, n) * rng.choice([-1, 1], n)
        a = [rng.random(n) < 1 / (1 + np.exp(-(0.85 + difficulty + shared + rng.normal(0, seed_sd)))) for _ in range(3)]
        b = [rng.random(n) < 1 / (1 + np.exp(-(0.85 + difficulty - shared + rng.normal(0, seed_sd)))) for _ in range(3)]
        d = np.array(a, float) - np.array(b, float)
        (r,), _ = two_level_bootstrap(d[None], resamples=resamples, seed=sim)
        p_t = paired_t_p(d.mean(axis=1), np.zeros(3))
        boot += r.p_value < 0.05
        t += p_t < 0.05
        both += intersection_union(r.p_value, p_t) < 0.05
    return boot / sims, t / sims, both / sims


def test_with_three_seeds_the_bootstrap_alone_is_too_bold_and_both_tests_are_not():
    """Why the aggregate's p is max(bootstrap, t over seeds): with 3 seeds and seed-dominated
    variance the two-level bootstrap rejects a true null far above 5% (10 distinct seed resamples,
    plug-in variance); the t-test is the small-sample reference there. With a strong example effect
    shared by the seeds, the t-test (blind to it) is the bold one and the bootstrap the guard."""
    rng = np.random.default_rng(0)
    boot, t, both = _null_rejections(rng, 200, seed_sd=0.6, shared_sd=0.0)
    assert boot > 0.1 and both <= 0.08, (boot, t, both)
    boot, t, both = _null_rejections(rng, 200, seed_sd=0.0, shared_sd=1.5)
    assert t > 0.1 and both <= 0.08, (boot, t, both)


def test_verdict_needs_holm_ci_and_aso():
    assert verdict("degradation/noise", -0.2, -0.1, 0.001, 0.0, 1.0) == "reduces degradation"
    assert verdict("degradation/noise", 0.1, 0.2, 0.001, 1.0, 0.05) == "increases degradation"
    assert verdict("accuracy/clean", 0.05, 0.1, 0.01, 0.1, 0.9) == "raises accuracy"
    assert verdict("accuracy/clean", -0.1, -0.05, 0.01, 0.9, 0.1) == "lowers accuracy"
    assert verdict("degradation/noise", -0.2, -0.1, 0.06, 0.0, 1.0) == NO_EVIDENCE  # Holm p too large
    assert verdict("degradation/noise", -0.2, 0.01, 0.001, 0.0, 1.0) == NO_EVIDENCE  # CI reaches zero
    assert verdict("degradation/noise", -0.2, -0.1, 0.001, 0.35, 0.6) == NO_EVIDENCE  # seeds not dominant
    assert verdict("accuracy/clean", math.nan, math.nan, math.nan, math.nan, math.nan) == NO_EVIDENCE
