"""The evaluation metrics, each computed by one function that every reader calls.

`accuracy` is `{split: {lang: fraction}}` (results.json's shape): `clean`, one entry per
perturbed split, and, until `generalized_matrix` takes it out, the generalized pairs.
Degradation is clean minus perturbed accuracy per language (positive: the perturbation hurts);
`report.build_results` writes it to results.json and `callbacks.degradation` logs it to W&B,
both through `degradation` and `relative_degradation` here.

Pure Python (no torch): the report, the callback and the notebooks can read it cheaply.
"""

from __future__ import annotations

from collections import Counter

from robust_transfer.keys import CLEAN
from robust_transfer.keys import GENERALIZED_SPLIT as GENERALIZED

Accuracy = dict[str, dict[str, float]]

SMOOTHED = "smoothed"  # majority vote over perturbed copies (eval.smoothing)


def smoothed_copy(k: int) -> str:
    """The split name of the k-th perturbed copy that the smoothed vote reads."""
    return f"{SMOOTHED}#{k}"


def is_smoothed_copy(split: str) -> bool:
    return split.startswith(f"{SMOOTHED}#")


def degradation(accuracy: Accuracy) -> Accuracy:
    """`{split: {lang: clean - perturbed}}` for every perturbed split (not clean, not the
    generalized pairs, which have no clean counterpart), in `accuracy`'s order."""
    clean = accuracy[CLEAN]
    return {
        split: {lang: clean[lang] - acc for lang, acc in by_lang.items()}
        for split, by_lang in accuracy.items()
        if split not in (CLEAN, GENERALIZED)
    }


def relative_degradation(accuracy: Accuracy, degraded: Accuracy | None = None) -> Accuracy:
    """Degradation as a share of clean accuracy, `{split: {lang: (clean - perturbed) / clean}}`
    (0 where clean accuracy is 0); `degraded` is `degradation(accuracy)` when already computed."""
    clean = accuracy[CLEAN]
    degraded = degradation(accuracy) if degraded is None else degraded
    return {
        split: {lang: (d / clean[lang] if clean[lang] > 0 else 0.0) for lang, d in by_lang.items()}
        for split, by_lang in degraded.items()
    }


def degradation_rows(accuracy: Accuracy) -> list[list]:
    """[lang, split, clean, perturbed, degradation] for every perturbed split and language."""
    clean = accuracy[CLEAN]
    return [
        [lang, split, clean[lang], accuracy[split][lang], d]
        for split, by_lang in degradation(accuracy).items()
        for lang, d in by_lang.items()
    ]


def with_smoothed_vote(accuracy: Accuracy, predictions: list[dict]) -> Accuracy:
    """`accuracy` with the `smoothed#k` copies replaced by the majority vote's accuracy, `smoothed`
    (last). `predictions` are rows `{split, lang, id, label, prediction}`; the vote is per
    (language, id) over the copies' predictions, ties going to the smaller label so that the vote
    does not depend on the order of copies. Without copies, `accuracy` itself is returned."""
    if not any(is_smoothed_copy(split) for split in accuracy):
        return accuracy
    votes: dict[tuple[str, int], Counter] = {}
    labels: dict[tuple[str, int], int] = {}
    for row in predictions:
        if is_smoothed_copy(row["split"]):
            key = (row["lang"], row["id"])
            votes.setdefault(key, Counter())[row["prediction"]] += 1
            labels[key] = row["label"]
    correct: dict[str, list[bool]] = {}
    for key, counter in votes.items():
        top = max(counter.values())
        vote = min(label for label, n in counter.items() if n == top)
        correct.setdefault(key[0], []).append(vote == labels[key])
    kept = {split: by_lang for split, by_lang in accuracy.items() if not is_smoothed_copy(split)}
    return {**kept, SMOOTHED: {lang: sum(hits) / len(hits) for lang, hits in correct.items()}}


def generalized_matrix(accuracy: Accuracy) -> dict[str, dict[str, float]] | None:
    """Take the generalized split out of `accuracy` as `{lang1: {lang2: acc}}`, clean on the diagonal."""
    pairs = accuracy.pop(GENERALIZED, None)
    if pairs is None:
        return None
    langs = list(accuracy[CLEAN])
    return {a: {b: accuracy[CLEAN][a] if a == b else pairs[f"{a}-{b}"] for b in langs} for a in langs}
