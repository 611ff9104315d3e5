"""Aggregation over seeds: grouping, CIs, baselines, paired differences, McNemar, outputs."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from robust_transfer import aggregate as agg
from robust_transfer.keys import LANGUAGES
from robust_transfer.naming import config_group
from robust_transfer.stats import mcnemar_p
from robust_transfer.stats.verdict import NO_EVIDENCE
from tests.sweep_runs import smoke_sweep_runs  # noqa: F401 (fixture)

LANGS = ["en", "de", "ja"]
BASE_CONFIG = {
    "experiment": "smoke",
    "seed": 0,
    "output_dir": "x",
    "adversary": {"name": "none"},
    "intermediate": {"task": "synthetic_nli", "adversary": {"name": "none"}},
    "target": {"task": "synthetic_paws", "adversary": {"name": "none"}},
}


def _write_run(root: Path, name: str, config: dict, seed: int, correct: dict[str, dict[str, list[bool]]]) -> Path:
    """A run directory with results.json and predictions.csv from per-example correctness."""
    d = root / name
    d.mkdir(parents=True)
    config = {**copy.deepcopy(config), "seed": seed, "output_dir": str(d)}
    accuracy = {split: {lang: sum(v) / len(v) for lang, v in by.items()} for split, by in correct.items()}
    degradation = {s: {lang: accuracy["clean"][lang] - acc for lang, acc in by.items()} for s, by in accuracy.items() if s != "clean"}
    results = {"accuracy": accuracy, "degradation": degradation, "summary": {}, "stages": [], "config": config}
    if seed == 0:
        results["generalized"] = {a: {b: 0.5 + 0.1 * (a == b) for b in LANGS} for a in LANGS}
    (d / "results.json").write_text(json.dumps(results))
    with (d / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["split", "lang", "id", "label", "prediction"])
        for split, by in correct.items():
            for lang, v in by.items():
                for i, ok in enumerate(v):
                    w.writerow([split, lang, i, 1, 1 if ok else 0])
    return d


def _correct(n_right_clean: int, n_right_noise: int, n: int = 10) -> dict:
    return {
        "clean": {lang: [i < n_right_clean for i in range(n)] for lang in LANGS},
        "noise": {lang: [i < n_right_noise for i in range(n)] for lang in LANGS},
    }


@pytest.fixture
def fake_runs(tmp_path) -> Path:
    """Baseline (clean/clean) and adversarial target, 3 seeds each, plus an intermediate=none pair."""
    adv = copy.deepcopy(BASE_CONFIG)
    adv["target"]["adversary"] = {"name": "pgd", "epsilon": 1.0}
    no_inter = copy.deepcopy(BASE_CONFIG)
    no_inter["intermediate"] = {"task": "none", "adversary": {"name": "none"}}
    no_inter_adv = copy.deepcopy(no_inter)
    no_inter_adv["target"]["adversary"] = {"name": "pgd", "epsilon": 1.0}
    root = tmp_path / "runs"
    for seed in range(3):
        _write_run(root, f"base-{seed}", BASE_CONFIG, seed, _correct(8, 5 + seed % 2))  # degradation .3/.2/.3
        _write_run(root, f"adv-{seed}", adv, seed, _correct(8, 7))  # degradation .1: robust
        _write_run(root, f"noint-{seed}", no_inter, seed, _correct(6, 4))
    _write_run(root, "noint-adv-0", no_inter_adv, 0, _correct(6, 6))
    return root


def test_groups_cis_baselines_and_paired_tests(fake_runs, tmp_path):
    out = tmp_path / "agg"
    payload = agg.aggregate([fake_runs], out)
    groups = {g["label"]: g for g in payload["groups"]}
    assert set(groups) == {
        "intermediate.task=synthetic_nli, target.adversary=none",
        "intermediate.task=synthetic_nli, target.adversary=pgd",
        "intermediate.task=none, target.adversary=none",
        "intermediate.task=none, target.adversary=pgd",
    }
    base = groups["intermediate.task=synthetic_nli, target.adversary=none"]
    assert base["seeds"] == [0, 1, 2] and base["baseline"] is None
    assert base["id"] == config_group({**BASE_CONFIG, "seed": 5})
    # the baseline is the clean configuration with the same intermediate stage
    assert groups["intermediate.task=synthetic_nli, target.adversary=pgd"]["baseline"] == base["id"]
    assert groups["intermediate.task=none, target.adversary=pgd"]["baseline"] == groups["intermediate.task=none, target.adversary=none"]["id"]

    stats = {(r["label"], r["metric"], r["lang"]): r for r in payload["stats"]}
    deg = stats[("intermediate.task=synthetic_nli, target.adversary=none", "degradation/noise", "ja")]
    assert deg["n"] == 3 and deg["mean"] == pytest.approx((0.3 + 0.2 + 0.3) / 3)
    assert deg["ci_low"] < deg["mean"] < deg["ci_high"]
    assert ("intermediate.task=none, target.adversary=none", "accuracy/clean", "avg") in stats

    paired = {(r["label"], r["metric"], r["lang"]): r for r in payload["paired"]}
    d = paired[("intermediate.task=synthetic_nli, target.adversary=pgd", "degradation/noise", "de")]
    assert d["seeds"] == "0 1 2" and d["diff"] == pytest.approx(0.1 - (0.3 + 0.2 + 0.3) / 3)
    acc = paired[("intermediate.task=synthetic_nli, target.adversary=pgd", "accuracy/noise", "de")]
    # per seed the adversarial run gets examples 5 (or 6) .. 6 right that the baseline misses: McNemar per seed
    assert (acc["mcnemar_b"], acc["mcnemar_c"]) == ("2 1 2", "0 0 0")
    assert acc["mcnemar_p"] == " ".join(f"{mcnemar_p(b, 0):.3g}" for b in (2, 1, 2))
    assert acc["examples"] == 10 and acc["ci_low"] <= acc["diff"] <= acc["ci_high"]
    assert acc["holm_m"] == 1 * 4  # one comparison with >= 2 common seeds x (3 languages + avg)
    assert paired[("intermediate.task=synthetic_nli, target.adversary=pgd", "accuracy/noise", "avg")]["mcnemar_p"] == ""
    mc = [r for r in payload["mcnemar"] if r["split"] == "noise" and r["lang"] == "de" and r["label"].endswith("pgd")]
    assert [(r["seed"], r["b"], r["c"]) for r in mc] == [(0, 2, 0), (1, 1, 0), (2, 2, 0)]
    single = paired[("intermediate.task=none, target.adversary=pgd", "degradation/noise", "en")]
    assert single["n"] == 1 and math.isnan(single["ci_low"])  # one common seed: no interval, no test
    assert single["verdict"] == agg.NOT_TESTED_ONE_SEED and single["holm_m"] == 0

    for name in ("aggregate.md", "groups.csv", "paired.csv", "mcnemar.csv", "aggregate.json"):
        assert (out / name).is_file()
    pngs = {p.name for p in (out / "plots").glob("*.png")}
    assert {"accuracy_clean.png", "degradation_noise.png", "paired_degradation_noise.png"} <= pngs
    md = (out / "aggregate.md").read_text()
    assert "## degradation/noise" in md and "±" in md and "p (Holm)" in md and "Baseline:" in md
    assert "Holm family: 4 tests" in md
    saved = json.loads((out / "aggregate.json").read_text())
    assert saved["groups"][0]["generalized"]["ja"]["ja"] == pytest.approx(0.6)


def test_baseline_by_key_value(fake_runs, tmp_path):
    payload = agg.aggregate([fake_runs], tmp_path / "agg", baseline=["intermediate.task=none"])
    groups = {g["label"]: g for g in payload["groups"]}
    none_pgd = groups["intermediate.task=none, target.adversary=pgd"]
    nli_pgd = groups["intermediate.task=synthetic_nli, target.adversary=pgd"]
    assert nli_pgd["baseline"] == none_pgd["id"]  # otherwise equal: same target adversary
    assert none_pgd["baseline"] is None
    assert "intermediate.task=none" in payload["markdown"]


def test_cli_and_errors(fake_runs, tmp_path, capsys):
    assert agg.main([str(fake_runs / "base-0"), str(fake_runs / "adv-0"), "--output", str(tmp_path / "o"), "--wandb", "disabled"]) == 0
    assert "Paired comparison" in capsys.readouterr().out
    assert agg.main([str(tmp_path / "nothing"), "--wandb", "disabled"]) == 2
    assert agg.main([str(fake_runs), "--baseline", "oops", "--wandb", "disabled", "--output", str(tmp_path / "p")]) == 2


def test_wandb_offline_summary_table(fake_runs, tmp_path):
    out = tmp_path / "agg"
    payload = agg.aggregate([fake_runs], out, wandb_mode="offline")
    assert payload["wandb"] == "offline"
    tables = list(out.rglob("aggregate_groups*.table.json"))
    assert tables and json.loads(tables[0].read_text())["columns"][:4] == ["group", "label", "metric", "lang"]
    assert list(out.rglob("aggregate_paired*.table.json"))


N_EXAMPLES = 400  # per language: enough that examples alone make small differences "significant"
ADV = {**copy.deepcopy(BASE_CONFIG), "target": {"task": "synthetic_paws", "adversary": {"name": "pgd", "epsilon": 1.0}}}


def _flip(rng: np.random.Generator, right: np.ndarray, count: int, to: bool) -> np.ndarray:
    """`right` with `count` examples that are not `to` (chosen at random) set to `to`."""
    out = right.copy()
    out[rng.choice(np.flatnonzero(right != to), size=count, replace=False)] = to
    return out


def _as_lists(by_split: dict) -> dict:
    return {split: {lang: v.tolist() for lang, v in by.items()} for split, by in by_split.items()}


@pytest.fixture
def disagreeing_seeds(tmp_path) -> Path:
    """Seed 0 of the adversarial configuration is far better than its baseline (+15 points on
    every language), seeds 1 and 2 slightly worse (-3 points): pooled over seeds McNemar sees 180
    discordant pairs for the configuration and 72 against it; the seeds do not agree."""
    rng = np.random.default_rng(0)
    root = tmp_path / "runs"
    for seed in range(3):
        base = {lang: rng.random(N_EXAMPLES) < 0.7 for lang in LANGS}
        if seed == 0:
            adv = {lang: _flip(rng, v, 60, True) for lang, v in base.items()}
        else:
            adv = {lang: _flip(rng, v, 12, False) for lang, v in base.items()}
        _write_run(root, f"base-{seed}", BASE_CONFIG, seed, _as_lists({"clean": base}))
        _write_run(root, f"adv-{seed}", ADV, seed, _as_lists({"clean": adv}))
    return root


def test_disagreeing_seeds_are_no_evidence_although_pooled_mcnemar_says_otherwise(disagreeing_seeds, tmp_path):
    payload = agg.aggregate([disagreeing_seeds], tmp_path / "agg")
    rows = {r["lang"]: r for r in payload["paired"] if r["metric"] == "accuracy/clean"}
    assert set(rows) == {*LANGS, "avg"}
    for lang in LANGS:
        per_seed = [r for r in payload["mcnemar"] if r["lang"] == lang]
        assert [(r["b"], r["c"]) for r in per_seed] == [(60, 0), (0, 12), (0, 12)]
        # the old, wrong unit: seeds pooled as if they were more examples
        pooled = sm_mcnemar([[0, sum(r["b"] for r in per_seed)], [sum(r["c"] for r in per_seed), 0]], exact=True)
        assert pooled.pvalue < 1e-3
        assert per_seed[0]["p"] < 1e-15  # seed 0 alone is a real difference between those two models
    everything = payload["mcnemar"]  # pooled over seeds and languages: b = 180, c = 72
    assert sm_mcnemar([[0, sum(r["b"] for r in everything)], [sum(r["c"] for r in everything), 0]], exact=True).pvalue < 1e-10
    for lang, r in rows.items():
        assert r["diff"] == pytest.approx((0.15 - 0.03 - 0.03) / 3)
        assert r["ci_low"] < 0 < r["ci_high"], lang
        assert r["p_holm"] > 0.05 and r["verdict"] == NO_EVIDENCE, lang
        assert r["aso_eps_min"] > 0.2  # two seeds of three below the baseline: no almost-dominance
    md = (tmp_path / "agg" / "aggregate.md").read_text()
    assert "no evidence either way" in md and "raises accuracy" not in md


@pytest.fixture
def consistent_effect(tmp_path) -> Path:
    """On every seed and language the adversarial configuration gets 40 more examples right (+10
    points) and loses far fewer of its right answers under noise (8% against 30%)."""
    rng = np.random.default_rng(1)
    root = tmp_path / "runs"
    for seed in range(3):
        base, adv = {"clean": {}, "noise": {}}, {"clean": {}, "noise": {}}
        for lang in LANGS:
            clean = rng.random(N_EXAMPLES) < 0.7
            base["clean"][lang] = clean
            base["noise"][lang] = clean & (rng.random(N_EXAMPLES) > 0.3)
            adv["clean"][lang] = _flip(rng, clean, 40, True)
            adv["noise"][lang] = adv["clean"][lang] & (rng.random(N_EXAMPLES) > 0.08)
        _write_run(root, f"base-{seed}", BASE_CONFIG, seed, _as_lists(base))
        _write_run(root, f"adv-{seed}", ADV, seed, _as_lists(adv))
    return root


def test_a_consistent_effect_is_found(consistent_effect, tmp_path):
    payload = agg.aggregate([consistent_effect], tmp_path / "agg")
    by = {(r["metric"], r["lang"]): r for r in payload["paired"]}
    for lang in [*LANGS, "avg"]:
        clean, deg = by[("accuracy/clean", lang)], by[("degradation/noise", lang)]
        assert clean["diff"] == pytest.approx(0.1) and 0 < clean["ci_low"] < 0.1 < clean["ci_high"]
        assert clean["p_holm"] < 0.01 and clean["aso_eps_min"] < 0.2 and clean["verdict"] == "raises accuracy"
        assert deg["ci_high"] < 0 and deg["verdict"] == "reduces degradation", lang
        assert deg["aso_eps_min"] == 0.0 and deg["aso_eps_min_reverse"] > 0.9
    assert payload["statistics"]["holm_families"] == {"accuracy/clean": 4, "accuracy/noise": 4, "degradation/noise": 4}
    with (tmp_path / "agg" / "paired.csv").open() as f:
        header = next(csv.reader(f))
    assert {"diff", "ci_low", "ci_high", "p", "p_holm", "aso_eps_min", "verdict"} <= set(header)
    md = (tmp_path / "agg" / "aggregate.md").read_text()
    assert "| reduces degradation |" in md and "▼" in md


def test_aggregate_of_the_smoke_sweep(smoke_sweep_runs, tmp_path):  # noqa: F811
    root, _, _ = smoke_sweep_runs
    payload = agg.aggregate([root], tmp_path / "agg")
    labels = sorted(g["label"] for g in payload["groups"])
    assert labels == ["target.adversary=fgsm", "target.adversary=none"]
    assert all(g["seeds"] == [0, 1] for g in payload["groups"])
    rows = [r for r in payload["paired"] if r["metric"] == "degradation/char_noise"]
    assert {r["lang"] for r in rows} == {*LANGUAGES, "avg"}
    assert all(r["n"] == 2 for r in rows)
    acc = [r for r in payload["paired"] if r["metric"] == "accuracy/clean" and r["lang"] == "ja"][0]
    assert len(acc["mcnemar_p"].split()) == 2 and all(0 <= float(p) <= 1 for p in acc["mcnemar_p"].split())
    assert 0 < acc["p"] <= 1 and acc["p"] <= acc["p_holm"] <= 1 and acc["ci_low"] <= acc["diff"] <= acc["ci_high"]
    assert 0 <= acc["aso_eps_min"] <= 1 and acc["verdict"] in {NO_EVIDENCE, "raises accuracy", "lowers accuracy"}
    deg = [r for r in rows if r["lang"] == "avg"][0]
    assert deg["verdict"] in {NO_EVIDENCE, "reduces degradation", "increases degradation"}
    assert {(r["seed"], r["split"]) for r in payload["mcnemar"]} >= {(0, "clean"), (1, "char_noise")}
