"""Perturbed copies of a split, built once with `datasets.map` and cached by fingerprint."""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, concatenate_datasets
from datasets.fingerprint import Hasher

from robust_transfer.data.perturbations import Perturbation, build_perturbation, perturbation_stats

# bump when the way perturbed splits are built changes, to invalidate old caches
CACHE_VERSION = 1
# a family that changes fewer pairs than this in a language gets a warning in the report
LOW_CHANGE = 0.05


def perturbed_fingerprint(ds: Dataset, perturbation: Perturbation, lang: str) -> str:
    """Data (the dataset's content fingerprint), family, parameters (rate, seed...) and language."""
    return Hasher.hash([CACHE_VERSION, ds._fingerprint, perturbation, lang])


def perturb_split(ds: Dataset, perturbation: Perturbation, lang: str, cache_dir: Path | None) -> Dataset:
    """`ds` with `perturbation` applied; a second call with the same inputs reads the cache."""
    fingerprint = perturbed_fingerprint(ds, perturbation, lang)
    cache_file = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_file = str(cache_dir / f"{perturbation.name}-{lang}-{fingerprint}.arrow")
    return ds.map(
        perturbation.apply_batch,
        batched=True,
        fn_kwargs={"lang": lang},
        cache_file_name=cache_file,
        load_from_cache_file=True,
        new_fingerprint=fingerprint,
        desc=f"{perturbation.name}/{lang}",
    )


def augment_split(ds: Dataset, augment: dict, lang: str, seed: int, cache_dir: Path | None) -> Dataset:
    """RS-DA: the split followed by `copies` perturbed copies, copy k drawn with seed + k + 1."""
    params = dict(augment)
    family, copies = params.pop("family"), params.pop("copies", 1)
    parts = [ds]
    for k in range(copies):
        perturbation = build_perturbation(family, {**params, "seed": seed + k + 1})
        parts.append(perturb_split(ds, perturbation, lang, cache_dir))
    return concatenate_datasets(parts)


def split_stats(clean: Dataset, perturbed: Dataset, lang: str, fields: list[str]) -> dict[str, float]:
    """How much the perturbation changed this split (see perturbations.stats)."""
    columns = list(fields)
    return perturbation_stats(clean.select_columns(columns), perturbed.select_columns(columns), columns, lang)


def low_change_warnings(stats: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """One sentence per (family, language) that barely changed the data."""
    return [
        f"{split} changed only {s['changed_fraction']:.1%} of {lang} texts: its degradation says little."
        for split, by_lang in stats.items()
        for lang, s in by_lang.items()
        if s["changed_fraction"] < LOW_CHANGE
    ]
