"""Aggregation over seeds: grouping, CIs, baselines, paired differences, McNemar, outputs."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import pytest

from robust_transfer import aggregate as agg
from robust_transfer.naming import config_group
from robust_transfer.stats import mcnemar, mcnemar_p, mean_ci, paired_diff_ci
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


def test_mcnemar_exact():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(10, 0) == pytest.approx(2 * 0.5**10)
    assert mcnemar_p(5, 5) == 1.0
    m = mcnemar([True, True, False, True], [False, True, True, False])
    assert (m.b, m.c) == (2, 1)


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
    # per seed the adversarial run gets examples 5 (or 6) .. 6 right that the baseline misses
    assert (acc["mcnemar_b"], acc["mcnemar_c"]) == (2 + 1 + 2, 0)
    assert acc["mcnemar_p"] == pytest.approx(mcnemar_p(5, 0))
    pooled = paired[("intermediate.task=synthetic_nli, target.adversary=pgd", "accuracy/noise", "avg")]
    assert pooled["mcnemar_b"] == 3 * 5
    single = paired[("intermediate.task=none, target.adversary=pgd", "degradation/noise", "en")]
    assert single["n"] == 1 and math.isnan(single["ci_low"])  # one common seed: no interval

    for name in ("aggregate.md", "groups.csv", "paired.csv", "aggregate.json"):
        assert (out / name).is_file()
    pngs = {p.name for p in (out / "plots").glob("*.png")}
    assert {"accuracy_clean.png", "degradation_noise.png", "paired_degradation_noise.png"} <= pngs
    md = (out / "aggregate.md").read_text()
    assert "## degradation/noise" in md and "±" in md and "p=" in md and "Baseline:" in md
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


def test_aggregate_of_the_smoke_sweep(smoke_sweep_runs, tmp_path):  # noqa: F811
    root, _, _ = smoke_sweep_runs
    payload = agg.aggregate([root], tmp_path / "agg")
    labels = sorted(g["label"] for g in payload["groups"])
    assert labels == ["target.adversary=fgsm", "target.adversary=none"]
    assert all(g["seeds"] == [0, 1] for g in payload["groups"])
    rows = [r for r in payload["paired"] if r["metric"] == "degradation/char_noise"]
    assert {r["lang"] for r in rows} == {"en", "de", "es", "fr", "ja", "ko", "zh", "avg"}
    assert all(r["n"] == 2 for r in rows)
    acc = [r for r in payload["paired"] if r["metric"] == "accuracy/clean" and r["lang"] == "ja"][0]
    assert isinstance(acc["mcnemar_p"], float) and 0 <= acc["mcnemar_p"] <= 1
