"""Evaluation splits: clean, text-perturbed and embedding-attacked, for every language."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from omegaconf import DictConfig

from robust_transfer.data.generalized import build_generalized
from robust_transfer.data.perturbed import perturb_split, split_stats
from robust_transfer.keys import CLEAN
from robust_transfer.keys import GENERALIZED_SPLIT as GENERALIZED
from robust_transfer.models.module import EvalSplit
from robust_transfer.registry import build, copies_spec, eval_splits

SMOOTHED = "smoothed"  # majority vote over perturbed copies (eval.smoothing)


def attacked_logits(module, batch: dict, attack: dict[str, Any], seed: int) -> torch.Tensor:
    """Logits under an embedding-space attack; no parameter gradient is accumulated."""
    attacker = build("attack", attack["family"], attack["params"])
    adv = module.adversarial_batch(batch)
    generator = torch.Generator(device=batch["input_ids"].device).manual_seed(seed)
    with torch.enable_grad():
        delta = attacker.delta(adv, generator)
    with torch.no_grad():
        return adv.forward(adv.embed() + delta.detach())


def build_eval_splits(
    cfg: DictConfig, clean: dict[str, Dataset]
) -> tuple[list[EvalSplit], dict[str, Dataset], dict[str, dict[str, dict[str, float]]]]:
    """Every (split, language) to evaluate, its dataset (in dataloader order), and statistics
    of how much each text perturbation changed each language.

    Text perturbations are applied here, once per data/family/rate/seed (cached in
    `cache_dir/perturbed`); embedding attacks reuse the clean data inside the test step.
    """
    splits, data, stats = [], {}, {}
    cache = Path(cfg.cache_dir) / "perturbed"
    perturbations = eval_splits(cfg.eval.perturbations, cfg.data.seed)
    for lang, ds in clean.items():
        splits.append(EvalSplit(CLEAN, lang))
        data[f"{CLEAN}/{lang}"] = ds
        for spec in perturbations:
            name = spec.name
            if spec.kind == "attack":
                splits.append(EvalSplit(name, lang, {"family": spec.family, "params": asdict(spec.params)}))
                data[f"{name}/{lang}"] = ds
                continue
            perturbation = build("perturbation", spec.family, spec.params)
            if not perturbation.supports(lang):
                continue
            perturbed = perturb_split(ds, perturbation, lang, cache)
            splits.append(EvalSplit(name, lang))
            data[f"{name}/{lang}"] = perturbed
            stats.setdefault(name, {})[lang] = split_stats(ds, perturbed, lang, perturbation.params.fields)
    if cfg.eval.smoothing is not None:
        smoothing = copies_spec("eval.smoothing", cfg.eval.smoothing)
        for k in range(smoothing.copies):
            perturbation = build("perturbation", smoothing.family, smoothing.params(cfg.data.seed + 1000 + k))
            for lang, ds in clean.items():
                if perturbation.supports(lang):
                    splits.append(EvalSplit(f"{SMOOTHED}#{k}", lang))
                    data[f"{SMOOTHED}#{k}/{lang}"] = perturb_split(ds, perturbation, lang, cache)
    if cfg.eval.generalized and len(clean) > 1:
        for (a, b), ds in build_generalized(clean).datasets.items():
            if a != b:  # the diagonal is the clean split
                splits.append(EvalSplit(GENERALIZED, f"{a}-{b}"))
                data[f"{GENERALIZED}/{a}-{b}"] = ds
    return splits, data, stats


def smoothed_accuracy(accuracy: dict[str, dict[str, float]], predictions: list[dict]) -> None:
    """Replace the `smoothed#k` copies in `accuracy` by the majority vote's accuracy, `smoothed`."""
    copies = [split for split in accuracy if split.startswith(f"{SMOOTHED}#")]
    if not copies:
        return
    for split in copies:
        del accuracy[split]
    votes: dict[tuple[str, int], Counter] = {}
    labels: dict[tuple[str, int], int] = {}
    for row in predictions:
        if row["split"].startswith(f"{SMOOTHED}#"):
            key = (row["lang"], row["id"])
            votes.setdefault(key, Counter())[row["prediction"]] += 1
            labels[key] = row["label"]
    correct: dict[str, list[bool]] = {}
    for key, counter in votes.items():
        # ties go to the smaller label, so the vote does not depend on the order of copies
        top = max(counter.values())
        vote = min(label for label, n in counter.items() if n == top)
        correct.setdefault(key[0], []).append(vote == labels[key])
    accuracy[SMOOTHED] = {lang: sum(hits) / len(hits) for lang, hits in correct.items()}


def generalized_matrix(accuracy: dict[str, dict[str, float]]) -> dict[str, dict[str, float]] | None:
    """Take the generalized split out of `accuracy` as `{lang1: {lang2: acc}}`, clean on the diagonal."""
    pairs = accuracy.pop(GENERALIZED, None)
    if pairs is None:
        return None
    langs = list(accuracy[CLEAN])
    matrix = {a: {b: accuracy[CLEAN][a] if a == b else pairs[f"{a}-{b}"] for b in langs} for a in langs}
    return matrix
