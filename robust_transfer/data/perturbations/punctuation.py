"""``punctuation``: drop, change or add clause punctuation, with full-width forms in CJK.

Sites and unit of ``rate``:

* every existing clause mark (``. , ; : ! ?`` and the full-width ``。 、 ， ！ ？ ； ：``)
  is edited with probability ``rate``: dropped or changed (weights ``drop``/``change``).
  A mark between two digits (``3.5``, ``1,000``) is never touched, since that would
  change a number.
* every word end is given an extra mark with probability ``rate * add``. Word ends are
  the letters followed by a space in space-separated languages; in ja, phrase boundaries
  approximated by a hiragana followed by a kanji, katakana or Latin letter (a particle or
  ending, then the next phrase); in zh (no spaces, no script cue) one candidate boundary
  is drawn per two characters (about one per word) among the boundaries between two
  letters.

Marks by language: Latin-script languages and Korean use ASCII marks; ja and zh use
full-width marks (ja: 、。！？, zh: ，。、！？；：). A changed mark becomes another mark of
the same style, or, in ja/zh, with probability ``width_change`` its ASCII counterpart
(，-> , 。-> .), a common inconsistency in real CJK text.
"""

from __future__ import annotations

import random
import re

from robust_transfer.registry.perturbations import PunctuationParams

from .base import Perturbation, apply_edits, weighted_choice
from .char_noise import count_edits
from .scripts import NO_SPACE_LANGS

ASCII_MARKS = ".,;:!?"
FULL_MARKS = "。、，！？；："
_TO_ASCII = {"。": ".", "、": ",", "，": ",", "！": "!", "？": "?", "；": ";", "：": ":"}
ADD_MARKS = {
    "ja": "、。！？",
    "zh": "，。、！？；：",
    "ko": ",.!?",
    "en": ",.;:!?",
    "de": ",.;:!?",
    "es": ",.;:!?",
    "fr": ",.;:!?",
}

_MARK_RE = re.compile(r"[.,;:!?。、，！？；：]")
_WORD_END_RE = re.compile(r"\w(?=\s)")
_CJK_BOUNDARY_RE = re.compile(r"(?<=[^\W\d_])(?=[^\W\d_])")
# ja phrase (bunsetsu) boundary approximation: hiragana (particle/ending) -> kanji/katakana/Latin
JA_PHRASE_RE = re.compile(r"(?<=[\u3041-\u3096])(?=[\u4e00-\u9fff\u30a1-\u30faA-Za-z])")


def word_end_sites(text: str, lang: str) -> tuple[list[int], int]:
    """Insertion offsets and the number of trials (words) for ``text``."""
    if lang == "ja":
        sites = [m.start() for m in JA_PHRASE_RE.finditer(text)]
        return sites, len(sites)
    if lang in NO_SPACE_LANGS:
        sites = [m.start() for m in _CJK_BOUNDARY_RE.finditer(text)]
        return sites, (len(sites) + 1) // 2
    sites = [m.end() for m in _WORD_END_RE.finditer(text)]
    return sites, len(sites)


class Punctuation(Perturbation):
    name = "punctuation"
    Params = PunctuationParams

    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        p = self.params
        rate = p.rate
        if rate <= 0.0:
            return text
        edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
        rnd = rng.random
        cjk = lang in NO_SPACE_LANGS
        style = FULL_MARKS if cjk else ASCII_MARKS
        for m in _MARK_RE.finditer(text):
            if rnd() >= rate:
                continue
            i = m.start()
            if 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
                continue
            ch = text[i]
            if weighted_choice(rng, ("drop", "change"), (p.drop, p.change)) == "drop":
                edits.append((i, i + 1, ""))
                continue
            if ch in _TO_ASCII and rnd() < p.width_change:
                new = _TO_ASCII[ch]
            else:
                pool = FULL_MARKS if ch in _TO_ASCII else ASCII_MARKS
                pool = pool.replace(ch, "")
                new = rng.choice(pool)
            edits.append((i, i + 1, new))
        if p.add > 0.0:
            sites, trials = word_end_sites(text, lang)
            k = min(count_edits(rng, trials, rate * p.add), len(sites))
            if k:
                marks = ADD_MARKS.get(lang, style)
                for pos in rng.sample(sites, k):
                    if text[pos - 1] in style or (pos < len(text) and text[pos] in style):
                        continue
                    edits.append((pos, pos, rng.choice(marks)))
        if not edits:
            return text
        edits.sort(key=lambda e: (e[0], e[1]))
        return apply_edits(text, edits)
