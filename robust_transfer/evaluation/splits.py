"""Evaluation splits: clean, text-perturbed, embedding-attacked, smoothed copies and generalized
pairs, for every language.

`build_eval_splits` takes plain arguments (the pipeline translates the config into them) and
returns the splits in dataloader order, their datasets and how much each text perturbation
changed each language. The LightningModule asks a split for its logits (`EvalSplit.logits`) and
knows nothing else of evaluation: models sit below this package, which imports them never.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robust_transfer.data.generalized import build_generalized
from robust_transfer.data.perturbed import perturb_split, seeded_perturbation, split_stats
from robust_transfer.evaluation.attacks import Attack, is_attack
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
    perturbations: Mapping[str, Mapping[str, Any] | None],
    seed: int,
    perturbed_cache: Path,
    smoothing: Mapping[str, Any] | None = None,
    generalized: bool = True,
) -> tuple[list[EvalSplit], dict[str, Dataset], dict[str, dict[str, dict[str, float]]]]:
    """Every (split, language) to evaluate, its dataset (in dataloader order), and statistics
    of how much each text perturbation changed each language.

    `clean`: `{lang: test Dataset}`. `perturbations`: `{split name: {family, **params}}` (the
    family defaults to the name; None entries are skipped): a text perturbation family or an
    embedding attack (`attacks.ATTACK_PARAMS`). `seed`: the text perturbations' seed.
    `smoothing`: `{family, copies, **params}` for the smoothed vote, or None. `generalized`:
    add every ordered pair of different languages. Text perturbations are applied here, once
    per data/family/rate/seed (cached in `perturbed_cache`); embedding attacks reuse the clean data
    inside the test step.
    """
    splits, data, stats = [], {}, {}
    specs = {name: dict(spec) for name, spec in perturbations.items() if spec is not None}
    for lang, ds in clean.items():
        splits.append(EvalSplit(CLEAN, lang))
        data[f"{CLEAN}/{lang}"] = ds
        for name, spec in specs.items():
            params = dict(spec)
            family = params.pop("family", name)
            if is_attack(family):
                splits.append(EvalSplit(name, lang, Attack.build(family, params)))
                data[f"{name}/{lang}"] = ds
                continue
            perturbation = seeded_perturbation(family, params, seed)
            if not perturbation.supports(lang):
                continue
            perturbed = perturb_split(ds, perturbation, lang, perturbed_cache)
            splits.append(EvalSplit(name, lang))
            data[f"{name}/{lang}"] = perturbed
            stats.setdefault(name, {})[lang] = split_stats(ds, perturbed, lang, perturbation.params.fields)
    if smoothing is not None:
        params = dict(smoothing)
        family, copies = params.pop("family"), params.pop("copies", 1)
        for k in range(copies):
            perturbation = seeded_perturbation(family, params, seed + SMOOTHING_SEED_OFFSET + k)
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
