"""Perturbation families: registry, determinism, label preservation, realised rates.

The real-data tests read the PAWS-X dev files from ``<repo>/../shared/data/pawsx`` and
skip (with the reason) when that folder is absent, e.g. in a user's fresh clone.
"""

from __future__ import annotations

import json
import logging
import pickle
import random
from pathlib import Path

import pytest

from robust_transfer.data.perturbations import (
    Compose,
    build_perturbation,
    default_params,
    families,
    levenshtein,
    perturbation_stats,
    stable_seed,
)
from robust_transfer.data.perturbations.keyboard import (
    _KANA,
    _LATIN,
    compose_hangul,
    decompose_hangul,
    hangul_typo,
)
from robust_transfer.data.perturbations.scripts import script_of
from robust_transfer.data.perturbations.stats import word_units
from robust_transfer.data.perturbations.synonym import find_matches
from robust_transfer.keys import LANGUAGES as LANGS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PAWSX = SHARED / "pawsx"
LEXICON_EN = SHARED / "lexicons" / "counterfitted_neighbors_en.json"
MUSE = ROOT / "tests" / "data" / "muse"
FIELDS = ["sentence1", "sentence2"]
N_ROWS = 150

ALL_LANGS = set(LANGS)
# languages each family must change, with the parameters used here
CLAIMS = {
    "char_noise": ALL_LANGS,
    "keyboard": ALL_LANGS,
    "punctuation": ALL_LANGS,
    "whitespace": ALL_LANGS,
    "synonym": {"en"},
    "code_switch": ALL_LANGS,
}
CHAR_FAMILIES = ("char_noise", "keyboard")


def family_params(name: str, **over) -> dict:
    params: dict = {}
    if name == "synonym":
        params["lexicons"] = {"en": str(LEXICON_EN)}
    if name == "code_switch":
        params["dictionaries"] = {p.stem: str(p) for p in sorted(MUSE.glob("*.txt"))}
    params.update(over)
    return params


def read_pawsx(lang: str, n: int = N_ROWS) -> list[dict]:
    rows = []
    with open(PAWSX / f"dev-{lang}.tsv", encoding="utf-8", newline="") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            s1, s2, label = line.rstrip("\r\n").split("\t")
            rows.append(
                {"id": f"{lang}-{i}", "sentence1": s1, "sentence2": s2, "label": int(label)}
            )
    return rows


@pytest.fixture(scope="module")
def pawsx() -> dict[str, list[dict]]:
    if not all((PAWSX / f"dev-{lang}.tsv").is_file() for lang in LANGS):
        pytest.skip(
            f"real PAWS-X dev files not found under {PAWSX} (shared data is not part of the repository)"
        )
    return {lang: read_pawsx(lang) for lang in LANGS}


def needs_lexicon(name: str) -> None:
    if name == "synonym" and not LEXICON_EN.is_file():
        pytest.skip(f"English neighbour lexicon not found at {LEXICON_EN}")


def apply(pert, rows, lang):
    return [pert(r, lang) for r in rows]


# -- real PAWS-X text -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_changes_every_claimed_language_and_keeps_labels(name, pawsx):
    needs_lexicon(name)
    pert = build_perturbation(
        name, family_params(name, rate=0.3 if name not in CHAR_FAMILIES else 0.05)
    )
    for lang in sorted(CLAIMS[name]):
        assert pert.supports(lang), (name, lang)
        rows = pawsx[lang]
        out = apply(pert, rows, lang)
        assert [r["label"] for r in out] == [r["label"] for r in rows]
        assert [r["id"] for r in out] == [r["id"] for r in rows]
        stats = perturbation_stats(rows, out, FIELDS, lang=lang)
        floor = 0.15 if name == "code_switch" else 0.5
        assert stats["changed_fraction"] >= floor, (name, lang, stats)
        assert rows == read_pawsx(lang), "the input rows were modified in place"


@pytest.mark.parametrize("name", families())
def test_same_seed_same_output_other_seed_differs(name, pawsx):
    needs_lexicon(name)
    for lang in ("en", "ja", "ko", "zh"):
        if lang not in CLAIMS[name]:
            continue
        rows = pawsx[lang][:60]
        a = apply(build_perturbation(name, family_params(name, seed=1)), rows, lang)
        b = apply(build_perturbation(name, family_params(name, seed=1)), rows, lang)
        c = apply(build_perturbation(name, family_params(name, seed=2)), rows, lang)
        assert a == b
        changed = [(x, z) for x, z, r in zip(a, c, rows, strict=True) if x != r or z != r]
        assert changed and sum(x != z for x, z in changed) >= len(changed) // 3, (name, lang)


@pytest.mark.parametrize("name", CHAR_FAMILIES)
@pytest.mark.parametrize("rate", [0.02, 0.1])
def test_character_families_respect_rate(name, rate, pawsx):
    for lang in LANGS:
        out = apply(build_perturbation(name, {"rate": rate}), pawsx[lang], lang)
        realised = perturbation_stats(pawsx[lang], out, FIELDS, lang=lang)["char_edit_rate"]
        assert 0.6 * rate <= realised <= 1.5 * rate, (name, lang, rate, realised)


@pytest.mark.parametrize("name", ["punctuation", "whitespace"])
def test_site_families_scale_with_rate(name, pawsx):
    for lang in LANGS:
        rows = pawsx[lang]
        rates = []
        for rate in (0.0, 0.1, 0.4):
            out = apply(build_perturbation(name, {"rate": rate}), rows, lang)
            rates.append(perturbation_stats(rows, out, FIELDS, lang=lang)["char_edit_rate"])
        assert rates[0] == 0.0
        assert 0.0 < rates[1] < rates[2] <= 0.4, (name, lang, rates)


def test_lexical_families_replace_rate_of_matched_words(pawsx):
    """Word edit rate == rate x (share of words the lexicon knows), within tolerance."""
    cases = [("synonym", "en")] if LEXICON_EN.is_file() else []
    cases += [("code_switch", "en"), ("code_switch", "de"), ("code_switch", "fr")]
    for name, lang in cases:
        pert = build_perturbation(name, family_params(name, rate=0.5))
        lex = pert.lexicon(lang) if name == "synonym" else pert.dictionary(lang)
        rows = pawsx[lang]
        share = sum(
            len(find_matches(r[f], lang, lex)) / len(r[f].split()) for r in rows for f in FIELDS
        ) / (2 * len(rows))
        realised = perturbation_stats(rows, apply(pert, rows, lang), FIELDS, lang=lang)[
            "word_edit_rate"
        ]
        assert share > 0.01
        assert 0.7 * 0.5 * share <= realised <= 1.3 * 0.5 * share, (name, lang, share, realised)


def test_apply_batch_matches_call_and_pickles_deterministically(pawsx):
    pytest.importorskip("datasets")
    from datasets.fingerprint import Hasher

    rows = pawsx["ja"][:30]
    batch = {k: [r[k] for r in rows] for k in rows[0]}
    for name in families():
        if name == "synonym" and not LEXICON_EN.is_file():
            continue
        pert = build_perturbation(name, family_params(name))
        before = Hasher.hash(pert)
        out = pert.apply_batch(batch, "ja")
        assert [
            dict(zip(out, vals, strict=True)) for vals in zip(*out.values(), strict=True)
        ] == apply(pert, rows, "ja")
        assert Hasher.hash(pert) == before, f"{name}: fingerprint changed after use"
        assert Hasher.hash(build_perturbation(name, family_params(name))) == before
        assert Hasher.hash(build_perturbation(name, family_params(name, seed=5))) != before
        clone = pickle.loads(pickle.dumps(pert))
        assert clone == pert and clone.apply_batch(batch, "ja") == out


# -- handmade strings -----------------------------------------------------------------------
def test_stable_seed_is_fixed_across_processes():
    # a literal value: Python's hash() randomisation or a platform change would break it
    assert stable_seed(0, "char_noise", "en", "1", "sentence1") == 13013350781365612357


def test_char_noise_is_script_aware_and_keeps_spaces():
    p = build_perturbation("char_noise", {"rate": 0.5, "swap": 0, "delete": 0, "insert": 0})
    texts = {
        "en": "the quick brown fox",
        "de": "Größe über Straße",
        "ja": "ひらがな カタカナ 漢字",
        "ko": "한국어 문장",
        "zh": "这是中文句子",
    }
    for lang, text in texts.items():
        for seed in range(5):
            out = p.perturb_text(text, lang, random.Random(seed))
            assert len(out) == len(text)
            for a, b in zip(text, out, strict=True):
                assert script_of(a) == script_of(b), (lang, a, b)
                assert a.isspace() == b.isspace()
    full = build_perturbation("char_noise", {"rate": 0.3})
    text = "Jean-Luc wurde 1990 in Köln geboren , sagt er ."
    for seed in range(20):
        out = full.perturb_text(text, "de", random.Random(seed))
        assert out.count(" ") == text.count(" ") and "1990" in out
    assert (
        build_perturbation("char_noise", {"rate": 0.0}).perturb_text(text, "de", random.Random(0))
        == text
    )


def test_keyboard_layouts_kana_and_jamo():
    assert set(_LATIN["en"]["a"]) == set("qwsz")
    assert {"t", "u", "g", "h"} <= set(_LATIN["de"]["z"])  # QWERTZ: z sits between t and u
    assert "é" in _LATIN["fr"]["z"] and "ñ" in _LATIN["es"]["l"]
    assert "a" in _LATIN["es"]["á"]  # dead key missed
    assert "ま" in _KANA["な"] and "ね" in _KANA["な"]  # consonant n->m, vowel a->e
    assert all(script_of(c) == "katakana" for c in _KANA["ナ"])
    for syl in ("한", "국", "어", "뷁", "가"):
        assert compose_hangul(*decompose_hangul(syl)) == syl
        for seed in range(10):
            typo = hangul_typo(syl, random.Random(seed))
            diff = sum(
                x != y for x, y in zip(decompose_hangul(syl), decompose_hangul(typo), strict=True)
            )
            assert script_of(typo) == "hangul" and (diff == 1 or typo == syl)
    kb = build_perturbation("keyboard", {"rate": 1.0})
    assert kb.perturb_text("的在", "zh", random.Random(0)) != "的在"


def test_punctuation_and_whitespace_use_fullwidth_forms_in_cjk():
    text = "这是中文，用于测试。他在北京工作！"
    seen_p, seen_w = set(), set()
    punct = build_perturbation("punctuation", {"rate": 1.0, "drop": 0, "width_change": 0})
    space = build_perturbation("whitespace", {"rate": 1.0, "split": 2.0, "fullwidth": 1.0})
    for seed in range(10):
        seen_p.update(punct.perturb_text(text, "zh", random.Random(seed)))
        seen_w.update(space.perturb_text(text, "zh", random.Random(seed)))
    assert seen_p - set(text) <= set("。、，！？；：") and seen_p - set(text)
    assert "\u3000" in seen_w
    assert (
        build_perturbation("punctuation", {"rate": 1.0})
        .perturb_text("pi is 3.14", "en", random.Random(0))
        .count("3.14")
        == 1
    )
    out = build_perturbation(
        "whitespace", {"rate": 1.0, "double": 0, "replace": 0, "split": 0}
    ).perturb_text("a b c", "en", random.Random(0))
    assert out == "abc"


def test_synonym_keeps_capitalisation_and_skips_unknown_languages(tmp_path, caplog):
    lex = tmp_path / "lex.json"
    lex.write_text(json.dumps({"big": ["large"], "house": []}))
    p = build_perturbation("synonym", {"rate": 1.0, "lexicons": {"en": str(lex)}})
    assert (
        p.perturb_text("Big BIG big house.", "en", random.Random(0)) == "Large LARGE large house."
    )
    assert not p.supports("de")
    ex = {"id": 1, "sentence1": "gross", "sentence2": "klein", "label": 1}
    with caplog.at_level(logging.WARNING):
        assert p(ex, "de") == ex
    assert "does not support language 'de'" in caplog.text


def test_code_switch_dictionaries():
    p = build_perturbation(
        "code_switch",
        {
            "rate": 1.0,
            "dictionaries": {
                "en-de": str(MUSE / "en-de.txt"),
                "ja-en": str(MUSE / "ja-en.txt"),
                "ko-en": str(MUSE / "ko-en.txt"),
            },
        },
    )
    assert p.perturb_text("Born in the city", "en", random.Random(0)) == "Geboren in the stadt"
    assert (
        p.perturb_text("彼女は", "ja", random.Random(0)) == "sheは"
    )  # longest match: 彼女 over 彼
    assert (
        p.perturb_text("학교에서 공부", "ko", random.Random(0)) == "school에서 공부"
    )  # stem + particle
    assert p.supports("en") and not p.supports("de")
    with pytest.raises(ValueError, match="source-target"):
        build_perturbation("code_switch", {"dictionaries": {"ende": "x.txt"}})


def test_compose_equals_sequential_application():
    ex = {
        "id": "3",
        "sentence1": "The quick brown fox jumps over the lazy dog.",
        "sentence2": "Another one, here.",
        "label": 0,
    }
    comp = build_perturbation(
        "char_noise+punctuation", {"char_noise": {"rate": 0.2}, "punctuation": {"rate": 0.5}}
    )
    assert isinstance(comp, Compose) and comp.name == "char_noise+punctuation"
    a = build_perturbation("char_noise", {"rate": 0.2})
    b = build_perturbation("punctuation", {"rate": 0.5})
    assert comp(ex, "en") == b(a(ex, "en"), "en")
    assert pickle.loads(pickle.dumps(comp)) == comp


def test_registry_errors_name_valid_choices():
    assert set(families()) == {
        "char_noise",
        "keyboard",
        "punctuation",
        "whitespace",
        "synonym",
        "code_switch",
    }
    with pytest.raises(
        ValueError,
        match=r"unknown perturbation family 'char_nosie'. Did you mean 'char_noise'\? Valid: .*keyboard",
    ):
        build_perturbation("char_nosie", {})
    with pytest.raises(ValueError, match=r"unknown parameter 'rat'.*Did you mean 'rate'"):
        build_perturbation("keyboard", {"rat": 0.1})
    with pytest.raises(ValueError, match="rate must be in"):
        build_perturbation("keyboard", {"rate": 2})
    with pytest.raises(ValueError, match="keyed by family"):
        build_perturbation("char_noise+keyboard", {"rate": 0.1})
    for name in families():
        d = default_params(name)
        assert {"rate", "fields", "seed"} <= set(d) and d["fields"] == FIELDS and d["seed"] == 0


def test_stats_levenshtein_and_word_units():
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3 and levenshtein("abc", "abc") == 0
    assert levenshtein("flaw", "lawn") == 2
    assert levenshtein("a b c".split(), "a x c d".split()) == 2
    rng = random.Random(0)
    for _ in range(50):
        a = "".join(rng.choice("ab ") for _ in range(rng.randint(0, 80)))
        b = "".join(rng.choice("ab ") for _ in range(rng.randint(0, 80)))
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            cur = [i]
            for j, cb in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = cur
        assert levenshtein(a, b) == prev[-1]
    assert word_units("我在 北京", None) == ["我", "在", "北", "京"]
    assert word_units("한국어 문장", "ko") == ["한국어", "문장"]
    orig = [{"sentence1": "abcd efgh", "sentence2": "same"}]
    pert = [{"sentence1": "abXd efgh", "sentence2": "same"}]
    s = perturbation_stats(orig, pert, FIELDS)
    assert s["changed_fraction"] == 0.5
    assert s["char_edit_rate"] == pytest.approx((1 / 9) / 2)
    assert s["word_edit_rate"] == pytest.approx((1 / 2) / 2)
