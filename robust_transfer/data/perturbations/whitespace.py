"""``whitespace``: drop, double, replace or insert spaces, with U+3000 in CJK text.

Sites and unit of ``rate``:

* every existing whitespace character is edited with probability ``rate``: dropped
  (two words merge), doubled, or replaced by another space character (weights ``drop``,
  ``double``, ``replace``). The replacement is the ideographic space U+3000 in ja/zh/ko
  text and the no-break space U+00A0 in Latin-script text (ko: either, equally likely).
* every word gets a space inserted inside it with probability ``rate * split``. Words are
  whitespace tokens with at least two letters (the split falls between two letters).
* ja/zh have (almost) no spaces to edit, so their phrase boundaries stand in for spaces:
  each gets a space with probability ``rate`` (``split`` is not used). In ja these are
  hiragana -> kanji/katakana/Latin transitions (see ``punctuation``); in zh, with no
  script cue, one candidate per three characters (about one per two-character word plus
  slack) is drawn among the boundaries between two letters. The inserted space is ASCII
  or U+3000 (``fullwidth`` probability). Existing spaces (around Latin names) are edited
  as above.

Leading and trailing whitespace is never added, so ``str.strip()``-based readers see the
same sentence boundaries.
"""

from __future__ import annotations

import random
import re

from robust_transfer.registry.perturbations import WhitespaceParams

from .base import Perturbation, apply_edits, weighted_choice
from .char_noise import count_edits
from .punctuation import JA_PHRASE_RE
from .scripts import NO_SPACE_LANGS

IDEOGRAPHIC_SPACE = "\u3000"
NO_BREAK_SPACE = "\u00a0"
CJK_LANGS = frozenset({"ja", "zh", "ko"})

_SPACE_RE = re.compile(r"\s")
_INNER_RE = re.compile(r"(?<=[^\W\d_])(?=[^\W\d_])")  # boundary between two letters
_WORD_RE = re.compile(r"[^\W\d_]{2,}")


class Whitespace(Perturbation):
    name = "whitespace"
    Params = WhitespaceParams

    def _replacement(self, lang: str, rng: random.Random) -> str:
        if lang == "ko":
            return IDEOGRAPHIC_SPACE if rng.random() < 0.5 else NO_BREAK_SPACE
        return IDEOGRAPHIC_SPACE if lang in CJK_LANGS else NO_BREAK_SPACE

    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        p = self.params
        rate = p.rate
        if rate <= 0.0:
            return text
        edits: list[tuple[int, int, str]] = []
        rnd = rng.random
        weights = (p.drop, p.double, p.replace)
        last = len(text) - 1
        for m in _SPACE_RE.finditer(text):
            if rnd() >= rate:
                continue
            i = m.start()
            op = weighted_choice(rng, ("drop", "double", "replace"), weights)
            if op == "drop":
                if 0 < i < last:  # keep edge whitespace as is (strip() sees no change)
                    edits.append((i, i + 1, ""))
            elif op == "double":
                edits.append((i, i + 1, text[i] * 2))
            else:
                edits.append((i, i + 1, self._replacement(lang, rng)))
        if p.split > 0.0:
            if lang in NO_SPACE_LANGS:
                if lang == "ja":
                    sites = [m.start() for m in JA_PHRASE_RE.finditer(text)]
                    trials = len(sites)
                else:
                    sites = [m.start() for m in _INNER_RE.finditer(text)]
                    trials = (len(sites) + 2) // 3
                # no existing spaces to edit: phrase boundaries stand in for them (rate, not rate * split)
                k = min(count_edits(rng, trials, rate), len(sites))
                for pos in rng.sample(sites, k) if k else ():
                    edits.append((pos, pos, IDEOGRAPHIC_SPACE if rnd() < p.fullwidth else " "))
            else:
                words = [(m.start(), m.end()) for m in _WORD_RE.finditer(text)]
                k = count_edits(rng, len(words), rate * p.split)
                for start, end in rng.sample(words, k) if k else ():
                    pos = rng.randrange(start + 1, end)
                    edits.append((pos, pos, " "))
        if not edits:
            return text
        edits.sort()
        return apply_edits(text, edits)
