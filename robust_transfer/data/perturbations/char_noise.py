"""``char_noise``: random character edits (swap, delete, insert, substitute), script-aware.

Unit of ``rate``: the expected fraction of non-whitespace characters that receive an edit.
The number of edits in a text is Binomial(#non-space characters, rate); the edited
positions are drawn uniformly among the *eligible* characters (letters of any script: Latin,
kana, hangul syllables, CJK ideographs; never whitespace, punctuation or digits, since a
changed number can change the meaning and so the paraphrase label), so texts in every
script get the same edit budget per character.

Operations (weights configurable):

* ``swap``       exchange the character with its right neighbour (only if that is also
                 eligible, i.e. not a space or punctuation; otherwise ``substitute``)
* ``delete``     remove the character
* ``insert``     insert a character of the same script after it
* ``substitute`` replace it by a different character of the same script

"Same script" comes from :func:`.scripts.same_script_pool`: the language's Latin alphabet
with its accents (äöüß, ñáé..., éèàç...), in the same case; hiragana for hiragana,
katakana for katakana; a frequent hangul syllable for hangul; a list of frequent hanzi (zh)
or kanji (ja) for ideographs. Whitespace is never created, removed or
moved, so word boundaries stay where they were.
"""

from __future__ import annotations

import math
import random

from robust_transfer.registry.perturbations import CharNoiseParams

from .base import Perturbation, weighted_choice
from .scripts import HANGUL_FIRST, HANGUL_LAST, random_hangul, same_script_pool

_OPS = ("swap", "delete", "insert", "substitute")


def count_edits(rng: random.Random, n: int, rate: float) -> int:
    """A Binomial(n, rate) draw by geometric skipping (O(number of successes))."""
    if n <= 0 or rate <= 0.0:
        return 0
    if rate >= 1.0:
        return n
    log_q = math.log1p(-rate)
    k, i = 0, -1
    while True:
        i += int(math.log(1.0 - rng.random()) / log_q) + 1
        if i >= n:
            return k
        k += 1


def _eligible(ch: str) -> bool:
    # letters of any script (Latin, kana, hangul, han); digits are left alone because a
    # changed number can change a sentence's meaning and so the paraphrase label
    return ch.isalpha()


def pick_positions(rng: random.Random, text: str, k: int, eligible=_eligible) -> list[int]:
    """Up to ``k`` distinct indices of ``text`` whose character passes ``eligible``,
    uniformly at random, returned in descending order.

    Uses rejection sampling (O(k) for ordinary text) and falls back to a full scan when
    eligible characters are rare.
    """
    n = len(text)
    if k <= 0 or n == 0:
        return []
    chosen: set[int] = set()
    attempts = 0
    limit = 8 * k + 16
    rand = rng.randrange
    while len(chosen) < k and attempts < limit:
        attempts += 1
        i = rand(n)
        if i not in chosen and eligible(text[i]):
            chosen.add(i)
    if len(chosen) < k:
        pool = [i for i, ch in enumerate(text) if eligible(ch) and i not in chosen]
        need = min(k - len(chosen), len(pool))
        chosen.update(rng.sample(pool, need))
    return sorted(chosen, reverse=True)


def nonspace_count(text: str) -> int:
    """Number of non-whitespace characters."""
    return sum(map(len, text.split()))


def _same_script_char(ch: str, lang: str, rng: random.Random) -> str:
    o = ord(ch)
    if HANGUL_FIRST <= o <= HANGUL_LAST:
        return random_hangul(rng)
    pool = same_script_pool(ch, lang)
    return rng.choice(pool) if pool else ""


class CharNoise(Perturbation):
    name = "char_noise"
    Params = CharNoiseParams

    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        p = self.params
        k = count_edits(rng, nonspace_count(text), p.rate)
        if k == 0:
            return text
        weights = (p.swap, p.delete, p.insert, p.substitute)
        chars = list(text)
        for i in pick_positions(rng, text, k):
            if i >= len(chars):  # an earlier (right-hand) edit shortened the text
                continue
            ch = chars[i]
            op = weighted_choice(rng, _OPS, weights)
            if op == "swap":
                if i + 1 < len(chars) and _eligible(chars[i + 1]) and chars[i + 1] != ch:
                    chars[i], chars[i + 1] = chars[i + 1], ch
                    continue
                op = "substitute"
            if op == "delete":
                del chars[i]
            elif op == "insert":
                new = _same_script_char(ch, lang, rng)
                if new:
                    chars.insert(i + 1, new)
            else:  # substitute
                for _ in range(4):
                    new = _same_script_char(ch, lang, rng)
                    if new and new != ch:
                        chars[i] = new
                        break
        return "".join(chars)
