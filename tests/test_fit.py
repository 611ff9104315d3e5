"""End-to-end runs of `python -m robust_transfer.fit` on the fast offline config."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robust_transfer import keys
from robust_transfer.config import compose
from robust_transfer.pipeline import STAGE_KEY, run
from robust_transfer.report import one_class
from tests.conftest import ROOT, run_cli, smoke_args
from tests.wandb_records import read_run


def _run(args: list[str]) -> tuple[dict, Path]:
    cfg = compose(args)
    return run(cfg), Path(cfg.output_dir)


@pytest.fixture(scope="module")
def default_run(cache_dir, tmp_path_factory) -> tuple[dict, Path, list[str]]:
    """One smoke run with W&B offline, shared by the tests that only read its outputs."""
    args = smoke_args(cache_dir, tmp_path_factory.mktemp("default") / "run")
    os.environ["WANDB_MODE"] = "offline"
    results, out = _run([*args, "logger.wandb=true"])
    return results, out, args


def test_run_directory_follows_the_contract(default_run):
    results, out, _ = default_run
    for name in ("config.yaml", "results.json", "metrics.csv", "report.md", "predictions.csv"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "accuracy.png", "degradation.png", "degradation_heatmap.png", "generalized.png"
    ]
    assert {"intermediate.ckpt", "target.ckpt", "last.ckpt"} <= {p.name for p in (out / "checkpoints").iterdir()}

    saved = json.loads((out / "results.json").read_text())
    langs = list(keys.LANGUAGES)
    families = ["char_noise", "keyboard", "punctuation", "whitespace", "embedding_pgd"]
    assert list(saved["accuracy"]) == ["clean", *families]
    for split in saved["accuracy"].values():
        assert list(split) == langs and all(0.0 <= v <= 1.0 for v in split.values())
    clean, noisy = saved["accuracy"]["clean"], saved["accuracy"]["char_noise"]
    assert saved["degradation"]["char_noise"] == pytest.approx({k: clean[k] - noisy[k] for k in langs})
    summary = saved["summary"]
    assert summary["zero_shot_avg"] == pytest.approx(sum(clean[k] for k in langs[1:]) / 6)
    assert summary["transfer_gap"] == pytest.approx(clean["en"] - summary["zero_shot_avg"])
    assert set(summary["degradation_avg"]) == set(families)
    stats = saved["perturbation_stats"]
    assert set(stats) == set(families) - {"embedding_pgd"}  # attacks change embeddings, not text
    for by_lang in stats.values():
        assert list(by_lang) == langs
        assert all(0 < s["changed_fraction"] <= 1 and s["char_edit_rate"] > 0 for s in by_lang.values())
    assert [s["name"] for s in saved["stages"]] == ["intermediate", "target"]
    assert saved["stages"][0]["task"] == "synthetic_nli" and saved["stages"][0]["train_examples"] == 256
    assert saved["stages"][1]["steps"] == 16 and saved["stages"][1]["adversary"]["name"] == "none"
    assert saved["config"]["seed"] == 0

    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "target/train/loss" in header and "accuracy/clean/ja" in header
    predictions = (out / "predictions.csv").read_text().splitlines()
    generalized = saved["generalized"]
    assert list(generalized) == langs and all(list(row) == langs for row in generalized.values())
    assert all(generalized[lang][lang] == clean[lang] for lang in langs)
    # 6 splits x 7 languages + 42 mixed-language pairs (the synthetic task's labels always agree)
    assert len(predictions) == 1 + (6 * 7 + 42) * 64
    rows = [{**r, "prediction": int(r["prediction"])} for r in csv.DictReader((out / "predictions.csv").open())]
    assert saved["one_class"] == one_class(rows)  # the splits and languages where it predicts one class
    report = (out / "report.md").read_text()
    assert "deg:keyboard" in report and "| whitespace |" in report
    assert "![degradation_heatmap](plots/degradation_heatmap.png)" in report


def test_intermediate_none_runs_the_target_stage_only(fast_args):
    results, _ = _run([*fast_args, "intermediate=none"])
    assert [s["name"] for s in results["stages"]] == ["target"]


def test_same_seed_gives_identical_accuracies(default_run, tmp_path):
    first, _, args = default_run
    second, _ = _run([*args, f"output_dir={tmp_path / 'again'}"])
    assert first["accuracy"] == second["accuracy"]
    other, _ = _run([*args, f"output_dir={tmp_path / 'other'}", "seed=1"])
    assert other["accuracy"] != first["accuracy"]


def test_existing_run_directory_needs_resume(default_run):
    *_, args = default_run
    proc = subprocess.run(
        [sys.executable, "-m", "robust_transfer.fit", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "resume=true" in proc.stderr and "Traceback" not in proc.stderr


KILLER = """
import os, signal, sys
import pytorch_lightning as pl
from robust_transfer.config import compose
from robust_transfer.pipeline import run

class KillMidEpoch(pl.Callback):  # SIGKILL in the middle of the target stage's third epoch
    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if module.stage == "target" and trainer.current_epoch == 2 and batch_idx == 3:
            os.kill(os.getpid(), signal.SIGKILL)

run(compose(sys.argv[1:]), callbacks=(KillMidEpoch(),))
"""


def test_killed_run_resumes_to_the_same_results(fast_args, tmp_path):
    args = [*fast_args, "trainer.max_epochs=4"]
    reference, _ = _run([*args, f"output_dir={tmp_path / 'reference'}"])

    out = Path(compose(args).output_dir)
    proc = subprocess.run([sys.executable, "-c", KILLER, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (out / "results.json").exists()
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last[STAGE_KEY] == "target" and last["epoch"] == 1

    resumed, _ = _run([*args, "resume=true"])
    assert resumed["accuracy"] == reference["accuracy"]
    assert [s["steps"] for s in resumed["stages"]] == [s["steps"] for s in reference["stages"]]


def test_wandb_offline_run_holds_the_degradation_table(default_run):
    results, out, _ = default_run
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    tables = list(runs[0].rglob("degradation_table*.table.json"))
    assert tables, "no degradation table in the offline run"
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["lang", "split", "clean", "perturbed", "degradation"]
    rows = {(r[0], r[1]): r for r in table["data"]}
    assert {(lang, "char_noise") for lang in results["accuracy"]["clean"]} <= set(rows)
    ja = rows[("ja", "char_noise")]
    assert ja[4] == pytest.approx(results["degradation"]["char_noise"]["ja"])
    history, summary = read_run(runs[0])
    assert summary["degradation/char_noise/ja"] == pytest.approx(ja[4])
    assert any("target/train/loss" in row for row in history)
    charts = list(runs[0].rglob("degradation_bar/char_noise*.table.json"))
    assert charts, "no wandb.plot.bar chart of degradation"
    images = [p.name for p in runs[0].rglob("*.png")]
    assert any(name.startswith("degradation_heatmap") for name in images)


def test_randomized_smoothing_augmentation_adds_perturbed_copies(fast_args):
    results, _ = _run([*fast_args, "intermediate=none", "target.augment={family: char_noise, copies: 2, rate: 0.1}"])
    target = results["stages"][0]
    assert target["train_examples"] == 3 * 256
    assert target["augment"] == {"family": "char_noise", "copies": 2, "rate": 0.1}
    assert target["steps"] == 2 * 3 * 256 // 32


def test_smoothed_prediction_is_the_majority_vote_over_noisy_copies(fast_args):
    args = [*fast_args, "intermediate=none", "data.languages=[en,de]", "eval.generalized=false",
            "eval.perturbations={}", "eval.smoothing={family: char_noise, copies: 3, rate: 0.2}",
            "logger.wandb=true"]
    results, out = _run(args)
    # W&B sees the vote, not its copies
    _, summary = read_run(next((out / "wandb").glob("offline-run-*")))
    assert summary["accuracy/smoothed/en"] == pytest.approx(results["accuracy"]["smoothed"]["en"])
    assert not any(key.startswith("degradation/smoothed#") for key in summary)
    assert list(results["accuracy"]) == ["clean", "smoothed"]
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    copies = {r["split"] for r in rows} - {"clean"}
    assert copies == {"smoothed#0", "smoothed#1", "smoothed#2"}
    for lang in ("en", "de"):
        votes, labels = {}, {}
        for r in rows:
            if r["lang"] == lang and r["split"] != "clean":
                votes.setdefault(r["id"], []).append(int(r["prediction"]))
                labels[r["id"]] = int(r["label"])
        majority = {i: int(sum(v) >= 2) for i, v in votes.items()}  # 3 copies, 2 labels: no ties
        expected = sum(majority[i] == labels[i] for i in votes) / len(votes)
        assert results["accuracy"]["smoothed"][lang] == pytest.approx(expected)
        assert results["degradation"]["smoothed"][lang] == pytest.approx(results["accuracy"]["clean"][lang] - expected)


def test_select_best_keeps_the_epoch_with_the_best_validation_accuracy(fast_args):
    args = [*fast_args, "intermediate=none", "target.select_best=true", "trainer.max_epochs=4",
            "data.languages=[en]", "eval.generalized=false", "eval.perturbations={}"]
    results, out = _run(args)
    rows = [r for r in csv.DictReader((out / "metrics.csv").open()) if r["target/val/accuracy"]]
    scores = [float(r["target/val/accuracy"]) for r in rows]
    assert len(scores) == 4
    best_epoch = scores.index(max(scores))  # the first of equal maxima: a later tie is not better
    target = results["stages"][0]
    assert target["selected_epoch"] == int(rows[best_epoch]["epoch"])
    assert target["selected_val_accuracy"] == pytest.approx(max(scores))
    # the evaluated (and saved) weights are the selected epoch's
    best = torch.load(out / "checkpoints" / "target-best.ckpt", weights_only=False)["state_dict"]
    final = torch.load(out / "checkpoints" / "target.ckpt", weights_only=False)["state_dict"]
    assert all(torch.equal(best[k], final[k]) for k in best)


def test_select_best_without_validation_is_a_clear_error(fast_args):
    proc = run_cli(*fast_args, "intermediate=none", "target.select_best=true", "target.max_steps=3")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "target.select_best=true" in proc.stderr and "Traceback" not in proc.stderr
