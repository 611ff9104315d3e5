"""The generalized cross-lingual setting: sentence1 in one language, sentence2 in another.

PAWS-X's evaluation files are parallel (row `id` of every language translates the same English
pair), so for every ordered pair of languages (A, B) a pair dataset can be built with
sentence1 from A's row and sentence2 from B's row of the same `id`.

Labels: the label is A's (the language of sentence1). Translation changed the label on a few
rows (the seven PAWS-X dev files agree on 1928 of 2000 lines), so on a row where A's and B's labels
differ the pair's true label is unknown; by default (`on_label_mismatch="drop"`) such rows are
dropped from (A, B); `"keep"` keeps them with A's label. Either way they are counted in
`label_mismatch[(A, B)]`.
Ids present in only one of A and B are dropped and counted in `missing`. The diagonal (A, A) is
A's own dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from datasets import Dataset

log = logging.getLogger(__name__)
MISMATCH_POLICIES = ("drop", "keep")


@dataclass
class GeneralizedSplits:
    """`datasets[(a, b)]`: sentence1 from a, sentence2 from b, label from a; counts per pair."""

    languages: list[str]
    datasets: dict[tuple[str, str], Dataset]
    on_label_mismatch: str = "drop"  # what happened to the rows counted in label_mismatch
    label_mismatch: dict[tuple[str, str], int] = field(default_factory=dict)
    missing: dict[tuple[str, str], int] = field(default_factory=dict)

    def matrix(self) -> dict[str, dict[str, Dataset]]:
        """The same datasets as `{lang1: {lang2: Dataset}}` (results.json's `generalized` shape)."""
        return {a: {b: self.datasets[(a, b)] for b in self.languages} for a in self.languages}

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """`{lang1: {lang2: {rows, label_mismatch, missing}}}`, for logs and reports."""
        return {
            a: {
                b: {
                    "rows": len(self.datasets[(a, b)]),
                    "label_mismatch": self.label_mismatch.get((a, b), 0),
                    "missing": self.missing.get((a, b), 0),
                }
                for b in self.languages
            }
            for a in self.languages
        }


def build_generalized(
    parallel: dict[str, Dataset],
    languages: Sequence[str] | None = None,
    *,
    on_label_mismatch: str = "drop",
) -> GeneralizedSplits:
    """Every ordered pair (A, B) of `languages` (default: all of `parallel`), aligned by `id`.

    `parallel` maps a language to its evaluation Dataset (columns id, sentence1, sentence2,
    label, ids unique within a language). Rows keep A's order; every dataset has exactly the
    columns id, sentence1, sentence2, label.
    """
    if on_label_mismatch not in MISMATCH_POLICIES:
        raise ValueError(f"on_label_mismatch must be one of {MISMATCH_POLICIES}, got {on_label_mismatch!r}")
    langs = list(languages if languages is not None else parallel)
    absent = [lang for lang in langs if lang not in parallel]
    if absent:
        raise ValueError(f"no evaluation data for language(s) {', '.join(absent)}")
    tables = {}
    for lang in langs:
        table = parallel[lang].select_columns(["id", "sentence1", "sentence2", "label"]).to_dict()
        if len(set(table["id"])) != len(table["id"]):
            raise ValueError(f"ids of language '{lang}' are not unique: rows cannot be aligned by id")
        table["index"] = {i: k for k, i in enumerate(table["id"])}
        tables[lang] = table
    out = GeneralizedSplits(languages=langs, datasets={}, on_label_mismatch=on_label_mismatch)
    columns = ["id", "sentence1", "sentence2", "label"]
    for a in langs:
        ta = tables[a]
        for b in langs:
            if a == b:
                out.datasets[(a, b)] = parallel[a].select_columns(columns)
                continue
            tb = tables[b]
            rows = {"id": [], "sentence1": [], "sentence2": [], "label": []}
            missing = mismatched = 0
            for k, id_ in enumerate(ta["id"]):
                j = tb["index"].get(id_)
                if j is None:
                    missing += 1
                    continue
                label = ta["label"][k]
                if label != tb["label"][j]:
                    mismatched += 1
                    if on_label_mismatch == "drop":
                        continue
                rows["id"].append(id_)
                rows["sentence1"].append(ta["sentence1"][k])
                rows["sentence2"].append(tb["sentence2"][j])
                rows["label"].append(label)
            missing += len(tb["id"]) - (len(ta["id"]) - missing)  # ids only in B
            features = parallel[a].select_columns(columns).features
            out.datasets[(a, b)] = Dataset.from_dict(rows, features=features)
            out.label_mismatch[(a, b)] = mismatched
            out.missing[(a, b)] = missing
    mismatched = sum(out.label_mismatch.values())
    if mismatched or any(out.missing.values()):
        log.info(
            "generalized setting: %d (lang1, lang2) datasets; %d rows whose labels differ between "
            "the two languages (%s), %d ids missing in one of them (dropped)",
            len(out.datasets), mismatched, "dropped" if on_label_mismatch == "drop" else "kept, label of lang1",
            sum(out.missing.values()),
        )
    return out
