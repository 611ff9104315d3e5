"""Regularizers through the command line, at either stage, on the embedded offline task."""

from __future__ import annotations

import csv

import pytest

from robust_transfer.config import compose
from robust_transfer.pipeline import run
from tests.conftest import smoke_args

# every regularizer appears once at each stage across these runs
STAGE_PAIRS = [("fgsm", "pgd"), ("pgd", "freelb"), ("freelb", "smart"), ("smart", "r3f"), ("r3f", "random"), ("random", "fgsm")]
SMALL = ["data.languages=[en,de]", "eval.generalized=false", "eval.perturbations={char_noise: {family: char_noise, rate: 0.1}}"]


@pytest.mark.parametrize(("intermediate", "target"), STAGE_PAIRS)
def test_every_regularizer_runs_at_either_stage(intermediate, target, cache_dir, tmp_path):
    args = smoke_args(cache_dir, tmp_path / "run") + SMALL
    results = run(compose([*args, "trainer.max_epochs=1", f"intermediate.adversary={intermediate}", f"target.adversary={target}"]))
    stages = {s["name"]: s for s in results["stages"]}
    assert stages["intermediate"]["adversary"]["name"] == intermediate
    assert stages["target"]["adversary"]["name"] == target
    assert stages["target"]["steps"] == 256 // 32 and stages["target"]["skipped_steps"] == 0
    assert set(results["accuracy"]) == {"clean", "char_noise"}


def test_adversary_start_epoch_trains_clean_epochs_first(cache_dir, tmp_path):
    args = smoke_args(cache_dir, tmp_path / "run") + SMALL
    results = run(compose([*args, "intermediate=none", "target.adversary=fgsm", "target.adversary_start_epoch=1"]))
    assert results["stages"][0]["adversary_start_epoch"] == 1
    rows = [r for r in csv.DictReader((tmp_path / "run" / "metrics.csv").open()) if r.get("target/train/loss")]
    adversarial = {int(r["epoch"]): [] for r in rows}
    for r in rows:
        adversarial[int(r["epoch"])].append(bool(r.get("target/train/adv_loss")))
    assert sorted(adversarial) == [0, 1]
    assert not any(adversarial[0]) and all(adversarial[1])


def test_a_budget_too_large_to_represent_exits_2_before_training(tmp_path):
    from tests.conftest import run_cli

    out = tmp_path / "run"
    proc = run_cli("adversary=pgd", "adversary.epsilon=1e30", f"output_dir={out}")
    assert proc.returncode == 2
    assert "adversary': epsilon = 1e+30 is too large to represent" in proc.stderr
    assert "Use epsilon <= 1.84e+19" in proc.stderr
    assert not out.exists()  # nothing trained, nothing written


def test_training_warnings_name_skipped_stages_and_one_class_predictions():
    from robust_transfer.report import ignores_its_input, one_class, training_warnings

    stages = [
        {"name": "intermediate", "steps": 16, "skipped_steps": 0},
        {"name": "target", "steps": 0, "skipped_steps": 16},
    ]
    rows = [{"split": "clean", "lang": lang, "id": i, "label": i % 2, "prediction": p}
            for lang, p in (("en", 0), ("de", 1)) for i in range(4)]
    rows += [{"split": "clean", "lang": "ja", "id": i, "label": 0, "prediction": i % 2} for i in range(4)]
    assert training_warnings(stages, rows) == [
        "stage target made no optimizer step (16 skipped): its results come from the weights it started with.",
        "clean: every prediction is one class in en (class 0), de (class 1): the model ignores its input there, "
        "and its accuracy is that class's share.",
    ]
    assert one_class(rows) == {"clean": {"en": 0, "de": 1}}  # results.json's one_class; ja learned
    accuracy = {"clean": {"en": 0.5, "de": 0.5, "ja": 0.75}}
    assert not ignores_its_input({"accuracy": accuracy, "one_class": one_class(rows)})
    blind = rows[:8] + [{**r, "prediction": 1} for r in rows[8:]]
    assert ignores_its_input({"accuracy": accuracy, "one_class": one_class(blind)})
    assert not ignores_its_input({})  # a failed run's (empty) results
    mostly = [{"name": "target", "steps": 3, "skipped_steps": 13}, {"name": "x", "steps": 8, "skipped_steps": 8}]
    assert training_warnings(mostly, []) == [
        "stage target skipped 13 of 16 steps on non-finite values: lower the learning rate or the adversary's budget."
    ]
    assert training_warnings([{"name": "target", "steps": 16, "skipped_steps": None}], []) == []  # resumed


def test_smart_at_its_shipped_defaults_changes_the_gradient_on_the_default_task(cache_dir, tmp_path):
    """mt-dnn's unit-scaled perturbation: the regularizer moves the parameter gradient by well
    over 1% (with the paper's radius reading, epsilon 1e-5, it moved it by ~1e-7: clean training).
    The smoke encoder here; `benchmarks/regularizers.py --smart-effect` measures the default one."""
    from benchmarks.regularizers import smart_effect

    diffs = smart_effect(batches=2, overrides=smoke_args(cache_dir, tmp_path / "run"))
    assert min(diffs) >= 0.01, diffs


def test_smart_bregman_teacher_is_an_ema_kept_by_the_module_and_trains(cache_dir, tmp_path):
    import torch
    from transformers import BertConfig, BertModel

    from robust_transfer.adversarial import build_regularizer
    from robust_transfer.models.module import PairClassifier

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, max_position_embeddings=8)
    reg = build_regularizer("smart", {"bregman_mu": 1.0, "bregman_beta": 0.9})
    module = PairClassifier(BertModel(config, add_pooling_layer=False), 2, regularizer=reg).train()
    batch = {"input_ids": torch.randint(1, 30, (4, 8)), "attention_mask": torch.ones(4, 8, dtype=torch.long),
             "labels": torch.tensor([0, 1, 0, 1])}
    adv = module.adversarial_batch(batch, reg)
    with torch.no_grad():
        torch.testing.assert_close(adv.teacher(), module.eval().logits(batch))  # starts as a copy
    assert not any(n.startswith("_teacher") for n, _ in module.named_parameters())  # not trained/saved
    weight = next(module.head.parameters())
    old = weight.detach().clone()
    with torch.no_grad():
        weight.add_(1.0)
    module._teacher.update_parameters(module._teacher.module.__class__(module.encoder, module.head))
    teacher_weight = next(module._teacher.module.head.parameters())
    torch.testing.assert_close(teacher_weight, 0.9 * old + 0.1 * (old + 1.0))

    out = tmp_path / "run"
    results = run(compose([*smoke_args(cache_dir, out), *SMALL, "trainer.max_epochs=1", "intermediate=none",
                           "target.adversary=smart", "target.adversary.bregman_mu=1.0"]))
    assert results["stages"][0]["adversary"]["bregman_mu"] == 1.0
    assert results["stages"][0]["skipped_steps"] == 0 and results["stages"][0]["steps"] == 256 // 32


def test_report_md_shows_the_warnings_when_no_text_perturbation_was_evaluated(tmp_path):
    """Training and one-class warnings reach report.md even without perturbation statistics."""
    from robust_transfer.report import build_results, write_report

    stage = {"name": "target", "task": "pawsx", "adversary": {"name": "none"}, "steps": 16,
             "train_examples": 64, "skipped_steps": 14}
    results = build_results({"clean": {"en": 0.5, "de": 0.5}}, stages=[stage], config={},
                            warnings=["stage target skipped 14 of 16 steps"])
    write_report(tmp_path / "report.md", results, [])
    assert "> Warning: stage target skipped 14 of 16 steps" in (tmp_path / "report.md").read_text()
