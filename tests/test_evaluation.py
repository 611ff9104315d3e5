"""The evaluation package: its metrics are the ones results.json and W&B both show, its attacks'
parameters are checked without torch, and a split gives the module its logits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from robust_transfer import keys, report
from robust_transfer.callbacks import degradation as callback
from robust_transfer.evaluation import metrics
from robust_transfer.evaluation.attacks import Attack
from robust_transfer.evaluation.metrics import (
    SMOOTHED,
    degradation,
    generalized_matrix,
    relative_degradation,
    with_smoothed_vote,
)

from .conftest import heavy_imports

LANGS = ["en", "de", "ja"]


class _Run:
    """What DegradationLogger writes to: `log` and `summary` (a W&B run's surface)."""

    def __init__(self):
        self.summary: dict = {}
        self.logged: dict = {}

    def log(self, data: dict) -> None:
        self.logged.update(data)


def _test_epoch() -> tuple[dict, list[dict]]:
    """Per-split accuracies and prediction rows as the module leaves them at the end of a test
    epoch: clean, a text split, two smoothed copies, the generalized pairs; a clean accuracy of 0."""
    accuracy = {
        keys.CLEAN: {"en": 0.875, "de": 0.625, "ja": 0.0},
        "char_noise": {"en": 0.75, "de": 0.5625, "ja": 0.125},
        f"{SMOOTHED}#0": {"en": 0.5, "de": 0.5, "ja": 0.5},
        f"{SMOOTHED}#1": {"en": 0.5, "de": 0.5, "ja": 0.5},
        keys.GENERALIZED_SPLIT: {f"{a}-{b}": 0.25 + 0.125 * i for i, (a, b) in enumerate(
            (a, b) for a in LANGS for b in LANGS if a != b)},
    }
    predictions = []
    for lang in LANGS:
        for i, (label, p0, p1) in enumerate([(1, 1, 1), (0, 1, 0), (1, 0, 0), (0, 0, 0)]):
            if lang == "ja" and i == 3:
                continue  # a language with fewer voted examples: 2 of 3 right, not of 4
            predictions += [
                {"split": f"{SMOOTHED}#0", "lang": lang, "id": i, "label": label, "prediction": p0},
                {"split": f"{SMOOTHED}#1", "lang": lang, "id": i, "label": label, "prediction": p1},
            ]
    return accuracy, predictions


def test_report_and_callback_degradation_come_from_one_function_on_the_same_numbers():
    # the pipeline's order: the module's summary (the vote), the callback's on_test_end, then
    # the generalized pairs leave for their matrix and results.json is built
    raw, predictions = _test_epoch()
    accuracy = with_smoothed_vote(raw, predictions)
    run = _Run()
    from pytorch_lightning.loggers import WandbLogger

    trainer = SimpleNamespace(loggers=[WandbLogger(experiment=run)])
    callback.DegradationLogger().on_test_end(trainer, SimpleNamespace(test_results=accuracy))
    matrix = generalized_matrix(accuracy)
    results = report.build_results(accuracy, stages=[], config={})

    # one implementation, called by both (not two copies that happen to agree)
    assert report.metrics.degradation is metrics.degradation
    assert callback.degradation is metrics.degradation
    assert callback.relative_degradation is metrics.relative_degradation
    expected = degradation(accuracy)
    assert list(expected) == ["char_noise", SMOOTHED]
    assert results["degradation"] == expected
    assert results["relative_degradation"] == relative_degradation(accuracy)
    logged = {k[len("degradation/"):]: v for k, v in run.summary.items() if k.startswith("degradation/")}
    assert logged == {f"{s}/{lang}": d for s, by_lang in expected.items() for lang, d in by_lang.items()}
    for split, by_lang in expected.items():
        for lang, d in by_lang.items():
            # exactly equal: the same floats, not approximately the same formula
            assert run.summary[keys.degradation_key(split, lang)] == d
            assert run.summary[keys.relative_degradation_key(split, lang)] == results["relative_degradation"][split][lang]
            assert run.summary[keys.accuracy_key(split, lang)] == results["accuracy"][split][lang]
    assert results["degradation"]["char_noise"] == {"en": 0.125, "de": 0.0625, "ja": -0.125}
    assert results["relative_degradation"]["char_noise"]["ja"] == 0.0  # clean accuracy 0
    # the vote: en and de 3 of 4 right (ties go to label 0), ja 2 of 3
    assert results["accuracy"][SMOOTHED] == {"en": 0.75, "de": 0.75, "ja": 2 / 3}
    table = run.logged[keys.DEGRADATION_TABLE]
    assert [row[4] for row in table.data] == [d for by_lang in expected.values() for d in by_lang.values()]
    assert not any("#" in key or keys.GENERALIZED_SPLIT in key for key in run.summary)
    assert matrix["de"]["de"] == 0.625 and matrix["en"]["de"] == 0.25


def test_the_vote_replaces_its_copies_and_leaves_other_splits_alone():
    raw, predictions = _test_epoch()
    voted = with_smoothed_vote(raw, predictions)
    assert list(voted) == [keys.CLEAN, "char_noise", keys.GENERALIZED_SPLIT, SMOOTHED]
    assert f"{SMOOTHED}#0" in raw  # the module's own numbers are not rewritten
    without = {k: v for k, v in raw.items() if "#" not in k}
    assert with_smoothed_vote(without, predictions) is without
    # the order of copies does not matter, a tie goes to the smaller label
    flipped = [{**r, "split": f"{SMOOTHED}#{1 - int(r['split'][-1])}"} for r in predictions]
    assert with_smoothed_vote(raw, flipped)[SMOOTHED] == voted[SMOOTHED]


def test_an_attack_is_checked_by_the_registry_without_torch():
    assert Attack.build("embedding_noise", {}).params.sigma == 0.1
    assert Attack.build("embedding_pgd", {"steps": 2}).params.steps == 2
    with pytest.raises(ValueError, match="Did you mean 'epsilon'"):
        Attack.build("embedding_pgd", {"epsilom": 1.0})
    with pytest.raises(ValueError, match="restarts > 1 needs random_init"):
        Attack.build("embedding_pgd", {"restarts": 2, "random_init": False})
    # config validation checks an attack's parameters with the same function, before the run
    from robust_transfer.config import ConfigError, compose

    with pytest.raises(ConfigError, match=r"In 'eval.perturbations.pgd': norm must be one of l2, linf; got 'l3'"):
        compose(["eval.perturbations={pgd: {family: embedding_pgd, norm: l3}}"])
    assert heavy_imports("import robust_transfer.evaluation.attacks, robust_transfer.evaluation.metrics") == []


def test_a_split_gives_the_module_clean_or_attacked_logits():
    import torch
    from torch import nn

    from robust_transfer.adversarial import AdversarialBatch
    from robust_transfer.evaluation.attacks import Attack
    from robust_transfer.evaluation.splits import EvalSplit

    class Module(nn.Module):
        """The module's surface a split uses: logits(batch) and adversarial_batch(batch)."""

        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embedding, self.head = nn.Embedding(11, 4), nn.Linear(4, 2)

        def logits(self, batch, inputs_embeds=None):
            embeds = self.embedding(batch["input_ids"]) if inputs_embeds is None else inputs_embeds
            return self.head(embeds.mean(1))

        def adversarial_batch(self, batch):
            return AdversarialBatch(
                embed=lambda: self.embedding(batch["input_ids"]),
                forward=lambda embeds: self.logits(batch, inputs_embeds=embeds),
                mask=batch["attention_mask"], labels=batch["labels"],
            )

    module = Module().eval()
    batch = {"input_ids": torch.tensor([[1, 2, 3], [4, 5, 0]]), "attention_mask": torch.tensor([[1, 1, 1], [1, 1, 0]]),
             "labels": torch.tensor([0, 1])}
    clean = EvalSplit(keys.CLEAN, "en").logits(module, batch, 0)
    assert torch.equal(clean, module.logits(batch))
    silent = EvalSplit("noise", "en", Attack.build("embedding_noise", {"sigma": 0.0}))
    assert torch.allclose(silent.logits(module, batch, 0), clean)
    noisy = EvalSplit("noise", "en", Attack.build("embedding_noise", {"sigma": 1.0}))
    assert not torch.allclose(noisy.logits(module, batch, 0), clean)
    assert torch.equal(noisy.logits(module, batch, 3), noisy.logits(module, batch, 3))  # seeded by batch
    pgd = EvalSplit("pgd", "en", Attack.build("embedding_pgd", {"steps": 2, "epsilon": 0.5}))
    assert pgd.attack.params.alpha == 0.5  # defaults filled in when the split is built
    loss = nn.functional.cross_entropy
    assert loss(pgd.logits(module, batch, 0), batch["labels"]) >= loss(clean, batch["labels"])
    assert all(p.grad is None for p in module.parameters())
