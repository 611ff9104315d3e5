"""Perturbed copies of a split, built once with `datasets.map` and cached by fingerprint.

Each cache file has a SHA-256 beside it (`<file>.sha256`, written after `datasets` has written
the file). A cache file whose checksum is missing or wrong (truncated, overwritten, zeroed) is
deleted and rebuilt with a warning, instead of crashing the run or being read silently.
`datasets` has no such check of its own: `load_from_cache_file` trusts any Arrow file by name.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from datasets import Dataset, concatenate_datasets
from datasets.fingerprint import Hasher
from filelock import FileLock

from robust_transfer.checksums import file_sha256
from robust_transfer.data.perturbations import Perturbation, perturbation_stats
from robust_transfer.registry import build, copies_spec

# bump when the way perturbed splits are built changes, to invalidate old caches
CACHE_VERSION = 1
# a family that changes fewer pairs than this in a language gets a warning in the report
LOW_CHANGE = 0.05
log = logging.getLogger(__name__)


def _verified(cache_file: Path) -> bool:
    """Whether an existing cache file matches the checksum written when it was built; a damaged
    or unverifiable one is deleted (with its checksum) so that it is rebuilt."""
    sums = Path(f"{cache_file}.sha256")
    if not cache_file.exists():
        sums.unlink(missing_ok=True)
        return False
    expected = sums.read_text().strip() if sums.exists() else None
    if expected is not None and file_sha256(cache_file) == expected:
        return True
    reason = "has no checksum (an interrupted build?)" if expected is None else "does not match its checksum"
    log.warning("perturbed-split cache %s %s: deleting it and building it again", cache_file, reason)
    cache_file.unlink(missing_ok=True)
    sums.unlink(missing_ok=True)
    return False


def _write_checksum(cache_file: Path) -> None:
    tmp = Path(f"{cache_file}.sha256.tmp")
    tmp.write_text(file_sha256(cache_file) + "\n")
    os.replace(tmp, f"{cache_file}.sha256")


def perturbed_fingerprint(ds: Dataset, perturbation: Perturbation, lang: str) -> str:
    """Data (the dataset's content fingerprint), family, parameters (rate, seed...) and language."""
    return Hasher.hash([CACHE_VERSION, ds._fingerprint, perturbation, lang])


def perturb_split(ds: Dataset, perturbation: Perturbation, lang: str, cache_dir: Path | None) -> Dataset:
    """`ds` with `perturbation` applied; a second call with the same inputs reads the cache."""
    fingerprint = perturbed_fingerprint(ds, perturbation, lang)
    if cache_dir is None:
        return _apply(ds, perturbation, lang, fingerprint, None)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_file = cache_dir / f"{perturbation.name}-{lang}-{fingerprint}.arrow"
    # runs sharing a cache (a parallel sweep) verify and build one file at a time
    with FileLock(f"{cache_file}.lock"):
        fresh = not _verified(cache_file)
        out = _apply(ds, perturbation, lang, fingerprint, cache_file)
        if fresh and cache_file.exists():
            _write_checksum(cache_file)
    return out


def _apply(ds: Dataset, perturbation: Perturbation, lang: str, fingerprint: str, cache_file: Path | None) -> Dataset:
    return ds.map(
        perturbation.apply_batch,
        batched=True,
        fn_kwargs={"lang": lang},
        cache_file_name=None if cache_file is None else str(cache_file),
        load_from_cache_file=True,
        new_fingerprint=fingerprint,
        desc=f"{perturbation.name}/{lang}",
    )


def augment_split(ds: Dataset, augment: dict, lang: str, seed: int, cache_dir: Path | None) -> Dataset:
    """RS-DA: the split followed by `copies` perturbed copies, copy k drawn with seed + k + 1."""
    spec = copies_spec("augment", augment)
    parts = [ds]
    for k in range(spec.copies):
        perturbation = build("perturbation", spec.family, spec.params(seed + k + 1))
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
