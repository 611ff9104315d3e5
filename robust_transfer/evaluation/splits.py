"""Evaluation splits: clean, text-perturbed, embedding-attacked, smoothed copies and generalized
pairs, for every language.

`build_eval_splits` takes plain arguments (the pipeline translates the config into them) and
returns the splits in dataloader order, their datasets and how much each text perturbation
changed each language. The LightningModule asks a split for its logits (`EvalSplit.logits`) and
knows nothing else of evaluation: models sit below this package, which imports them never.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from robust_transfer import registry
from robust_transfer.data.generalized import build_generalized
from robust_transfer.data.perturbed import perturb_split, split_stats
from robust_transfer.evaluation.attacks import Attack
from robust_transfer.evaluation.metrics import smoothed_copy
from robust_transfer.keys import CLEAN
from robust_transfer.keys import GENERALIZED_SPLIT as GENERALIZED

if TYPE_CHECKING:
    import torch
    from datasets import Dataset

SMOOTHING_SEED_OFFSET = 1000  # copy k of the smoothed vote draws with seed + 1000 + k


@dataclass(frozen=True)
class EvalSplit:
    """One evaluation dataloader: a split (`clean` or a perturbation name) in one language.

    `attack` is an embedding-space attack applied at each test batch; text perturbations are
    applied to the data beforehand, so for them (and for `clean`) it is None.
    """

    name: str
    lang: str
    attack: Attack | None = field(default=None, hash=False, compare=False)

    def logits(self, module, batch: dict, batch_idx: int) -> torch.Tensor:
        """`module`'s logits on one test batch of this split (attacked with seed `batch_idx`)."""
        if self.attack is None:
            return module.logits(batch)
        return self.attack.logits(module, batch, seed=batch_idx)


def build_eval_splits(
    clean: dict[str, Dataset],
    *,
    perturbations: list[registry.SplitSpec],
    seed: int,
    perturbed_cache: Path,
    smoothing: registry.CopiesSpec | None = None,
    generalized: bool = True,
) -> tuple[list[EvalSplit], dict[str, Dataset], dict[str, dict[str, dict[str, float]]]]:
    """Every (split, language) to evaluate, its dataset (in dataloader order), and statistics
    of how much each text perturbation changed each language.

    `clean`: `{lang: test Dataset}`. `perturbations`: `eval.perturbations` as parsed by
    `registry.eval_splits` (a text perturbation, already seeded, or an embedding attack). `seed`:
    the run's data seed, from which the smoothed copies draw theirs.
    `smoothing`: `registry.copies_spec` of `eval.smoothing`, or None. `generalized`:
    add every ordered pair of different languages. Text perturbations are applied here, once
    per data/family/rate/seed (cached in `perturbed_cache`); embedding attacks reuse the clean data
    inside the test step.
    """
    splits, data, stats = [], {}, {}
    for lang, ds in clean.items():
        splits.append(EvalSplit(CLEAN, lang))
        data[f"{CLEAN}/{lang}"] = ds
        for spec in perturbations:
            name = spec.name
            if spec.kind == "attack":
                splits.append(EvalSplit(name, lang, Attack.build(spec.family, spec.params)))
                data[f"{name}/{lang}"] = ds
                continue
            perturbation = registry.build("perturbation", spec.family, spec.params)
            if not perturbation.supports(lang):
                continue
            perturbed = perturb_split(ds, perturbation, lang, perturbed_cache)
            splits.append(EvalSplit(name, lang))
            data[f"{name}/{lang}"] = perturbed
            stats.setdefault(name, {})[lang] = split_stats(ds, perturbed, lang, perturbation.params.fields)
    if smoothing is not None:
        for k in range(smoothing.copies):
            params = smoothing.params(seed + SMOOTHING_SEED_OFFSET + k)
            perturbation = registry.build("perturbation", smoothing.family, params)
            for lang, ds in clean.items():
                if perturbation.supports(lang):
                    splits.append(EvalSplit(smoothed_copy(k), lang))
                    data[f"{smoothed_copy(k)}/{lang}"] = perturb_split(ds, perturbation, lang, perturbed_cache)
    if generalized and len(clean) > 1:
        for (a, b), ds in build_generalized(clean).datasets.items():
            if a != b:  # the diagonal is the clean split
                splits.append(EvalSplit(GENERALIZED, f"{a}-{b}"))
                data[f"{GENERALIZED}/{a}-{b}"] = ds
    return splits, data, stats
