"""Embedded offline synthetic tasks: PAWS-style paraphrase pairs in 7 languages + English NLI.

Pure Python (no torch). Every sentence states one *fact*: ``relation(a, b, year)`` where ``a``
and ``b`` are invented person names (Latin script in every language, so they tokenize the
same everywhere) and ``year`` is a four-digit number. A PAWS pair has high word overlap and
its label depends on roles:

* paraphrase (label 1): the same fact, another template of the same language (a fraction
  ``passive_rate`` in passive/converse voice, which reverses the name order);
* non-paraphrase (label 0): one of ``role_swap`` (``b`` and ``a`` exchanged, as in PAWS),
  ``entity`` (one name replaced), ``year`` (year changed).

Most pairs can be decided from language-neutral anchors (names and digits, and their order),
which is what makes zero-shot cross-lingual transfer possible for a tiny encoder.

Pairs are *parallel*: the same underlying fact, templates, negative type and label are
rendered in every language under the same ``id``. Splits are disjoint at the level of the
underlying fact (relation, unordered name pair, year), assigned by a stable hash.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from robust_transfer.keys import DATA_SPLITS, LANGUAGES

NLI_LABELS = ("entailment", "neutral", "contradiction")
NEGATIVE_TYPES = ("role_swap", "entity", "year")

NAMES = (
    "Alice", "Bruno", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ingrid", "Jonas",
    "Karin", "Leon", "Marta", "Nico", "Olga", "Pablo", "Rosa", "Sven", "Tina", "Umar",
    "Vera", "Walter", "Xenia", "Yusuf", "Zoe", "Anton", "Berta", "Carlos", "Dora", "Emil",
    "Frida", "Gustav", "Hanna", "Igor", "Julia", "Kurt", "Lena", "Milan", "Nora", "Oskar",
)

# relation -> language -> (active templates, passive/converse templates).
# Active templates keep the order {a} ... {b}; passive ones put {b} first.
TEMPLATES: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "defeat": {
        "en": (("{a} defeated {b} in {y}.", "In {y}, {a} beat {b}."), ("{b} was defeated by {a} in {y}.",)),
        "de": (("{a} besiegte {b} im Jahr {y}.", "Im Jahr {y} schlug {a} {b}."), ("{b} wurde im Jahr {y} von {a} besiegt.",)),
        "es": (("{a} derrotó a {b} en {y}.", "En {y}, {a} venció a {b}."), ("{b} fue derrotado por {a} en {y}.",)),
        "fr": (("{a} a battu {b} en {y}.", "En {y}, {a} a vaincu {b}."), ("{b} a été battu par {a} en {y}.",)),
        "ja": (("{a}は{y}年に{b}を破った。", "{y}年、{a}が{b}に勝った。"), ("{b}は{y}年に{a}に敗れた。",)),
        "ko": (("{a}는 {y}년에 {b}를 이겼다.", "{y}년에 {a}가 {b}를 물리쳤다."), ("{b}는 {y}년에 {a}에게 졌다.",)),
        "zh": (("{a}在{y}年击败了{b}。", "{y}年，{a}战胜了{b}。"), ("{b}在{y}年被{a}击败了。",)),
    },
    "teach": {
        "en": (("{a} taught {b} in {y}.", "In {y}, {a} trained {b}."), ("{b} was taught by {a} in {y}.",)),
        "de": (("{a} unterrichtete {b} im Jahr {y}.", "Im Jahr {y} lehrte {a} {b}."), ("{b} wurde im Jahr {y} von {a} unterrichtet.",)),
        "es": (("{a} enseñó a {b} en {y}.", "En {y}, {a} instruyó a {b}."), ("{b} fue instruido por {a} en {y}.",)),
        "fr": (("{a} a enseigné à {b} en {y}.", "En {y}, {a} a formé {b}."), ("{b} a été formé par {a} en {y}.",)),
        "ja": (("{a}は{y}年に{b}を教えた。", "{y}年、{a}が{b}を指導した。"), ("{b}は{y}年に{a}に教わった。",)),
        "ko": (("{a}는 {y}년에 {b}를 가르쳤다.", "{y}년에 {a}가 {b}를 지도했다."), ("{b}는 {y}년에 {a}에게 배웠다.",)),
        "zh": (("{a}在{y}年教过{b}。", "{y}年，{a}指导了{b}。"), ("{b}在{y}年受教于{a}。",)),
    },
    "hire": {
        "en": (("{a} hired {b} in {y}.", "In {y}, {a} employed {b}."), ("{b} was hired by {a} in {y}.",)),
        "de": (("{a} stellte {b} im Jahr {y} ein.", "Im Jahr {y} engagierte {a} {b}."), ("{b} wurde im Jahr {y} von {a} eingestellt.",)),
        "es": (("{a} contrató a {b} en {y}.", "En {y}, {a} empleó a {b}."), ("{b} fue contratado por {a} en {y}.",)),
        "fr": (("{a} a embauché {b} en {y}.", "En {y}, {a} a recruté {b}."), ("{b} a été embauché par {a} en {y}.",)),
        "ja": (("{a}は{y}年に{b}を雇った。", "{y}年、{a}が{b}を採用した。"), ("{b}は{y}年に{a}に雇われた。",)),
        "ko": (("{a}는 {y}년에 {b}를 고용했다.", "{y}년에 {a}가 {b}를 채용했다."), ("{b}는 {y}년에 {a}에게 고용되었다.",)),
        "zh": (("{a}在{y}年雇用了{b}。", "{y}年，{a}聘请了{b}。"), ("{b}在{y}年被{a}雇用了。",)),
    },
    "succeed": {
        "en": (("{a} succeeded {b} in {y}.", "In {y}, {a} replaced {b}."), ("{b} was replaced by {a} in {y}.",)),
        "de": (("{a} folgte {b} im Jahr {y} nach.", "Im Jahr {y} ersetzte {a} {b}."), ("{b} wurde im Jahr {y} von {a} abgelöst.",)),
        "es": (("{a} sucedió a {b} en {y}.", "En {y}, {a} reemplazó a {b}."), ("{b} fue reemplazado por {a} en {y}.",)),
        "fr": (("{a} a succédé à {b} en {y}.", "En {y}, {a} a remplacé {b}."), ("{b} a été remplacé par {a} en {y}.",)),
        "ja": (("{a}は{y}年に{b}の後を継いだ。", "{y}年、{a}が{b}の後任になった。"), ("{b}の後任は{y}年に{a}になった。",)),
        "ko": (("{a}는 {y}년에 {b}의 뒤를 이었다.", "{y}년에 {a}가 {b}의 후임이 되었다."), ("{b}의 후임은 {y}년에 {a}가 되었다.",)),
        "zh": (("{a}在{y}年接替了{b}。", "{y}年，{a}继任了{b}的职位。"), ("{b}的职位在{y}年由{a}接替。",)),
    },
    "visit": {
        "en": (("{a} visited {b} in {y}.", "In {y}, {a} went to see {b}."), ("{b} was visited by {a} in {y}.",)),
        "de": (("{a} besuchte {b} im Jahr {y}.", "Im Jahr {y} traf {a} {b} zu Hause."), ("{b} wurde im Jahr {y} von {a} besucht.",)),
        "es": (("{a} visitó a {b} en {y}.", "En {y}, {a} fue a ver a {b}."), ("{b} fue visitado por {a} en {y}.",)),
        "fr": (("{a} a rendu visite à {b} en {y}.", "En {y}, {a} est allé voir {b}."), ("{b} a reçu la visite de {a} en {y}.",)),
        "ja": (("{a}は{y}年に{b}を訪ねた。", "{y}年、{a}が{b}を訪問した。"), ("{b}は{y}年に{a}の訪問を受けた。",)),
        "ko": (("{a}는 {y}년에 {b}를 방문했다.", "{y}년에 {a}가 {b}를 찾아갔다."), ("{b}는 {y}년에 {a}의 방문을 받았다.",)),
        "zh": (("{a}在{y}年拜访了{b}。", "{y}年，{a}探望了{b}。"), ("{b}在{y}年接待了{a}的来访。",)),
    },
    "invite": {
        "en": (("{a} invited {b} in {y}.", "In {y}, {a} asked {b} to come."), ("{b} was invited by {a} in {y}.",)),
        "de": (("{a} lud {b} im Jahr {y} ein.", "Im Jahr {y} bat {a} {b} zu kommen."), ("{b} wurde im Jahr {y} von {a} eingeladen.",)),
        "es": (("{a} invitó a {b} en {y}.", "En {y}, {a} convidó a {b}."), ("{b} fue invitado por {a} en {y}.",)),
        "fr": (("{a} a invité {b} en {y}.", "En {y}, {a} a convié {b}."), ("{b} a été invité par {a} en {y}.",)),
        "ja": (("{a}は{y}年に{b}を招待した。", "{y}年、{a}が{b}を招いた。"), ("{b}は{y}年に{a}に招待された。",)),
        "ko": (("{a}는 {y}년에 {b}를 초대했다.", "{y}년에 {a}가 {b}를 초청했다."), ("{b}는 {y}년에 {a}에게 초대받았다.",)),
        "zh": (("{a}在{y}年邀请了{b}。", "{y}年，{a}请{b}来做客。"), ("{b}在{y}年受到了{a}的邀请。",)),
    },
}
RELATIONS = tuple(TEMPLATES)


@dataclass
class SyntheticPawsSpec:
    """Every knob of the synthetic tasks (used as the ``data.synthetic`` config node)."""

    train_size: int = 8000  # PAWS training pairs (English is what stage 2 trains on)
    validation_size: int = 500  # PAWS validation pairs per language
    test_size: int = 1000  # PAWS test pairs per language
    nli_train_size: int = 8000  # English NLI (intermediate task) training pairs
    nli_validation_size: int = 500  # English NLI validation pairs
    num_names: int = 4  # how many invented names facts draw from (first N of NAMES)
    year_min: int = 1980  # smallest year in a fact
    num_years: int = 30  # years are year_min .. year_min + num_years - 1
    num_relations: int = 6  # how many relations (first N of RELATIONS)
    positive_rate: float = 0.5  # fraction of pairs labelled paraphrase
    negative_mix: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])  # weights of role_swap, entity, year negatives
    passive_rate: float = 0.05  # fraction of pairs whose second sentence is in passive/converse voice
    validation_fraction: float = 0.1  # share of underlying facts reserved for validation
    test_fraction: float = 0.1  # share of underlying facts reserved for test
    nli_passive_rate: float = 0.3  # passive rate of NLI entailment hypotheses


# --------------------------------------------------------------------------------------------
# facts and rendering


def _names(spec: SyntheticPawsSpec) -> tuple[str, ...]:
    if not 3 <= spec.num_names <= len(NAMES):
        raise ValueError(f"num_names must be in [3, {len(NAMES)}], got {spec.num_names}")
    return NAMES[: spec.num_names]


def _relations(spec: SyntheticPawsSpec) -> tuple[str, ...]:
    if not 1 <= spec.num_relations <= len(RELATIONS):
        raise ValueError(f"num_relations must be in [1, {len(RELATIONS)}]")
    return RELATIONS[: spec.num_relations]


def _years(spec: SyntheticPawsSpec) -> list[int]:
    if spec.num_years < 2:
        raise ValueError("num_years must be >= 2")
    return list(range(spec.year_min, spec.year_min + spec.num_years))


def fact_split(relation: str, a: str, b: str, year: int, spec: SyntheticPawsSpec) -> str:
    """Split owning a fact; the name pair is unordered so a role swap never crosses splits."""
    lo, hi = sorted((a, b))
    digest = hashlib.sha256(f"{relation}|{lo}|{hi}|{year}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < spec.test_fraction:
        return "test"
    if u < spec.test_fraction + spec.validation_fraction:
        return "validation"
    return "train"


def render(lang: str, relation: str, a: str, b: str, year: int, template: int, passive: bool) -> str:
    """Render ``relation(a, b, year)`` in ``lang``; ``template`` indexes the active variants."""
    active, passives = TEMPLATES[relation][lang]
    pool = passives if passive else active
    text = pool[template % len(pool)].format(a=a, b=b, y=year)
    if lang == "ko":
        text = _korean_particles(text, (a, b))
    return text


_KO_AFTER_CONSONANT = {"는": "은", "를": "을", "가": "이", "와": "과"}


def _korean_particles(text: str, names: tuple[str, ...]) -> str:
    """Use the particle form that follows a consonant (은/을/이/과) after consonant-final names."""
    for name in names:
        if name[-1].lower() in "aeiouy":
            continue
        for vowel_form, consonant_form in _KO_AFTER_CONSONANT.items():
            text = text.replace(name + vowel_form, name + consonant_form)
    return text


def _sample_fact(rng: random.Random, spec: SyntheticPawsSpec, split: str | None):
    names, rels, years = _names(spec), _relations(spec), _years(spec)
    for _ in range(10_000):
        rel = rng.choice(rels)
        a, b = rng.sample(names, 2)
        y = rng.choice(years)
        if split is None or fact_split(rel, a, b, y, spec) == split:
            return rel, a, b, y
    raise RuntimeError(f"could not sample a fact for split {split!r}: too few names/years")


def _seed_for(*parts) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _check_split(split: str) -> None:
    if split not in DATA_SPLITS:
        raise ValueError(f"split must be one of {DATA_SPLITS}, got {split!r}")


def _size(spec: SyntheticPawsSpec, split: str, task: str) -> int:
    if task == "nli":
        return {"train": spec.nli_train_size, "validation": spec.nli_validation_size,
                "test": spec.nli_validation_size}[split]
    return {"train": spec.train_size, "validation": spec.validation_size, "test": spec.test_size}[split]


def _pick_negative(rng: random.Random, spec: SyntheticPawsSpec) -> str:
    if len(spec.negative_mix) != len(NEGATIVE_TYPES):
        raise ValueError(f"negative_mix needs {len(NEGATIVE_TYPES)} weights {NEGATIVE_TYPES}")
    return rng.choices(NEGATIVE_TYPES, weights=spec.negative_mix)[0]


def _perturb_fact(rng, spec, kind, rel, a, b, y):
    """The second fact of a non-paraphrase pair."""
    if kind == "role_swap":
        return rel, b, a, y
    if kind == "entity":
        others = [n for n in _names(spec) if n not in (a, b)]
        c = rng.choice(others)
        return (rel, c, b, y) if rng.random() < 0.5 else (rel, a, c, y)
    if kind == "year":
        y2 = rng.choice([v for v in _years(spec) if v != y])
        return rel, a, b, y2
    if kind == "relation":
        rel2 = rng.choice([r for r in _relations(spec) if r != rel])
        return rel2, a, b, y
    raise ValueError(kind)


def generate_paws(spec: SyntheticPawsSpec, split: str, seed: int,
                  languages=LANGUAGES) -> dict[str, list[dict]]:
    """PAWS-style pairs ``{lang: [{"id", "sentence1", "sentence2", "label"}]}``, parallel over languages."""
    _check_split(split)
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown:
        raise ValueError(f"unknown languages {unknown}; known: {LANGUAGES}")
    rng = random.Random(_seed_for("paws", split, seed))
    out: dict[str, list[dict]] = {lang: [] for lang in languages}
    n = _size(spec, split, "paws")
    n_pos = round(n * spec.positive_rate)
    labels = [1] * n_pos + [0] * (n - n_pos)
    rng.shuffle(labels)
    for i, label in enumerate(labels):
        rel, a, b, y = _sample_fact(rng, spec, split)
        # the second sentence always uses the other active template (or the passive one), in
        # both classes, so "same template" is no shortcut and a paraphrase is never identical
        t1 = rng.randrange(2)
        t2 = 1 - t1
        passive = rng.random() < spec.passive_rate
        if label == 1:
            fact2 = (rel, a, b, y)
        else:
            fact2 = _perturb_fact(rng, spec, _pick_negative(rng, spec), rel, a, b, y)
        for lang in languages:
            out[lang].append({
                "id": i,
                "sentence1": render(lang, rel, a, b, y, t1, False),
                "sentence2": render(lang, *fact2, t2, passive),
                "label": label,
            })
    return out


def generate_nli(spec: SyntheticPawsSpec, split: str, seed: int) -> list[dict]:
    """English 3-class NLI over the same facts: teaches matching names/years to roles.

    entailment: the same fact in another template (or passive voice);
    contradiction: roles swapped or the year changed;
    neutral: another person in one role, or another relation between the same people.
    """
    _check_split(split)
    rng = random.Random(_seed_for("nli", split, seed))
    n = _size(spec, split, "nli")
    labels = [i % 3 for i in range(n)]
    rng.shuffle(labels)
    rows = []
    for i, label in enumerate(labels):
        rel, a, b, y = _sample_fact(rng, spec, split)
        t1 = rng.randrange(2)
        t2 = 1 - t1
        passive = rng.random() < spec.nli_passive_rate
        if label == 0:
            fact2 = (rel, a, b, y)
        elif label == 2:
            fact2 = _perturb_fact(rng, spec, rng.choice(("role_swap", "year")), rel, a, b, y)
        else:
            fact2 = _perturb_fact(rng, spec, rng.choice(("entity", "relation")), rel, a, b, y)
        rows.append({"id": i, "premise": render("en", rel, a, b, y, t1, False),
                     "hypothesis": render("en", *fact2, t2, passive), "label": label})
    return rows


def unlabelled_corpus(spec: SyntheticPawsSpec, seed: int, size: int,
                      languages=LANGUAGES) -> list[str]:
    """``size`` single sentences spread over ``languages`` (tokenizer training, MLM)."""
    rng = random.Random(_seed_for("corpus", seed))
    out = []
    for i in range(size):
        rel, a, b, y = _sample_fact(rng, spec, None)
        lang = languages[i % len(languages)]
        out.append(render(lang, rel, a, b, y, rng.randrange(2), rng.random() < 0.3))
    return out


def parallel_pairs(spec: SyntheticPawsSpec, seed: int, size: int, languages=LANGUAGES,
                   same_language_rate: float = 0.3) -> list[tuple[str, str]]:
    """Pairs of sentences stating the *same* fact, in two languages (translation-LM) or in one
    language with two templates (restatement); used by the tiny encoder's pretraining."""
    rng = random.Random(_seed_for("parallel", seed))
    out = []
    for _ in range(size):
        rel, a, b, y = _sample_fact(rng, spec, None)
        l1 = rng.choice(languages)
        l2 = l1 if rng.random() < same_language_rate else rng.choice(languages)
        s1 = render(l1, rel, a, b, y, rng.randrange(2), rng.random() < 0.15)
        s2 = render(l2, rel, a, b, y, rng.randrange(2), rng.random() < 0.15)
        out.append((s1, s2))
    return out
