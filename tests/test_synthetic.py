"""Behaviour tests of the embedded synthetic PAWS-style and NLI tasks."""

import dataclasses
import re

import pytest

from robust_transfer.data.synthetic import (
    NLI_LABELS,
    SyntheticPawsSpec,
    generate_nli,
    generate_paws,
    unlabelled_corpus,
)
from robust_transfer.keys import DATA_SPLITS, LANGUAGES

SMALL = SyntheticPawsSpec(train_size=400, validation_size=200, test_size=200,
                          nli_train_size=300, nli_validation_size=90)

SCRIPT_RE = {
    "ja": re.compile(r"[\u3040-\u30ff]"),  # kana
    "ko": re.compile(r"[\uac00-\ud7a3]"),  # hangul
    "zh": re.compile(r"[\u4e00-\u9fff]"),  # hanzi
}
NON_LATIN = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def test_split():
    return generate_paws(SMALL, "test", seed=0)


def test_rows_have_the_schema(test_split):
    assert set(test_split) == set(LANGUAGES)
    for rows in test_split.values():
        assert len(rows) == SMALL.test_size
        for row in rows:
            assert set(row) == {"id", "sentence1", "sentence2", "label"}
            assert row["label"] in (0, 1)
            assert row["sentence1"] != row["sentence2"]


def test_parallel_across_languages(test_split):
    en = test_split["en"]
    for lang in LANGUAGES[1:]:
        rows = test_split[lang]
        assert [r["id"] for r in rows] == [r["id"] for r in en]
        assert [r["label"] for r in rows] == [r["label"] for r in en]
        assert all(r["sentence1"] != e["sentence1"] for r, e in zip(rows, en, strict=True))
        # the same names appear in the parallel sentences
        names = re.compile(r"[A-Z][a-z]+")
        for r, e in zip(rows[:50], en[:50], strict=True):
            en_names = {n for n in names.findall(e["sentence1"]) if n != "In"}
            assert en_names <= set(names.findall(r["sentence1"]))


def test_deterministic_and_seed_dependent():
    a = generate_paws(SMALL, "train", seed=3, languages=("en", "ja"))
    b = generate_paws(SMALL, "train", seed=3, languages=("en", "ja"))
    c = generate_paws(SMALL, "train", seed=4, languages=("en", "ja"))
    assert a == b
    assert a["en"] != c["en"]
    assert generate_nli(SMALL, "train", 1) == generate_nli(SMALL, "train", 1)
    assert generate_nli(SMALL, "train", 1) != generate_nli(SMALL, "train", 2)


def test_language_subset_matches_full_generation(test_split):
    assert generate_paws(SMALL, "test", seed=0, languages=("ko",))["ko"] == test_split["ko"]


def test_balanced_labels(test_split):
    labels = [r["label"] for r in test_split["en"]]
    assert sum(labels) == SMALL.test_size // 2
    nli = [r["label"] for r in generate_nli(SMALL, "train", 0)]
    assert [nli.count(i) for i in range(len(NLI_LABELS))] == [100, 100, 100]


def _facts(rows):
    # an underlying fact: relation template is language-specific, so use names + year sets
    out = set()
    for r in rows:
        for s in (r["sentence1"],):
            names = tuple(sorted(re.findall(r"\b(?!In\b)[A-Z][a-z]+", s)))
            year = re.findall(r"\d{4}", s)[0]
            verb = re.sub(r"\b(?!In\b)[A-Z][a-z]+|\d{4}", "", s)
            out.add((names, year, verb))
    return out


def test_splits_are_disjoint():
    spec = dataclasses.replace(SMALL, validation_size=300, test_size=300)
    splits = {s: generate_paws(spec, s, seed=0, languages=("en",))["en"] for s in DATA_SPLITS}
    tr, va, te = (_facts(splits[s]) for s in DATA_SPLITS)
    assert not tr & va and not tr & te and not va & te


def test_scripts(test_split):
    for lang in LANGUAGES:
        for row in test_split[lang][:100]:
            for s in (row["sentence1"], row["sentence2"]):
                if lang in SCRIPT_RE:
                    assert SCRIPT_RE[lang].search(s), (lang, s)
                else:
                    assert not NON_LATIN.search(s), (lang, s)
                if lang == "ko":
                    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", s)
                if lang == "zh":
                    assert not re.search(r"[\u3040-\u30ff]", s)
    assert any(re.search(r"[\u4e00-\u9fff]", r["sentence1"]) for r in test_split["ja"])  # kanji too


def test_nli_rows():
    rows = generate_nli(SMALL, "validation", 0)
    assert len(rows) == SMALL.nli_validation_size
    assert all(set(r) == {"id", "premise", "hypothesis", "label"} for r in rows)
    assert all(not NON_LATIN.search(r["premise"] + r["hypothesis"]) for r in rows)


def test_unlabelled_corpus_covers_languages():
    texts = unlabelled_corpus(SMALL, seed=0, size=70)
    assert len(texts) == 70 and len(set(texts)) > 50
    for lang, pattern in SCRIPT_RE.items():
        assert any(pattern.search(t) for t in texts), lang


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_paws(SMALL, "dev", 0)
    with pytest.raises(ValueError):
        generate_paws(SMALL, "test", 0, languages=("xx",))
