"""``code_switch``: replace words by their translation from bilingual dictionaries.

Dictionaries are MUSE-format text files, one ``source target`` pair per line (separated by
a space or a tab; a source word with several translations has several lines), given as
``dictionaries: {"src-tgt": path}``.

**Key semantics**: a key ``"en-de"`` means *sentences written in the source language
(en) get some of their words replaced by target-language (de) translations*. So the
perturbation supports a language ``L`` when some key starts with ``"L-"``; to code-switch
Japanese evaluation text with English words, give ``{"ja-en": ".../ja-en.txt"}``. When
several dictionaries share a source language their translations are pooled.

Unit of ``rate``: the probability that each source word found in the dictionaries is
replaced (by a uniformly chosen translation). Word matching is the one of ``synonym``
(letter runs for space-separated languages, stem + particle for Korean, greedy longest
match for ja/zh); lines whose target equals the source (names, numbers) are ignored.
Capitalisation follows the original word. Dictionaries are loaded lazily into a
module-level cache, never stored on the object.
"""

from __future__ import annotations

import os
import random

from robust_transfer.registry.perturbations import CodeSwitchParams

from .base import Perturbation
from .synonym import cached_load, substitute_words

_MERGED: dict[tuple, dict[str, list[str]]] = {}


def load_muse_dictionary(path: str) -> dict[str, list[str]]:
    """``source -> [translations]`` from a MUSE ``source target`` file (keys lower-cased)."""
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 2:
                continue
            src, tgt = parts
            low = src.lower()
            if tgt.lower() == low:
                continue
            cands = out.setdefault(low, [])
            if tgt not in cands:
                cands.append(tgt)
    return out


class CodeSwitch(Perturbation):
    name = "code_switch"
    Params = CodeSwitchParams

    def paths_for(self, lang: str) -> list[str]:
        return [p for k, p in sorted(self.params.dictionaries.items()) if k.split("-")[0] == lang]

    def supports(self, lang: str) -> bool:
        return any(os.path.exists(p) for p in self.paths_for(lang))

    def dictionary(self, lang: str) -> dict[str, list[str]]:
        """The pooled ``source word -> translations`` mapping for sentences in ``lang``."""
        paths = self.paths_for(lang)
        if len(paths) == 1:
            return cached_load(paths[0], load_muse_dictionary)
        parts = [cached_load(p, load_muse_dictionary) for p in paths]
        key = tuple(id(d) for d in parts)
        merged = _MERGED.get(key)
        if merged is None:
            merged = {}
            for d in parts:
                for src, tgts in d.items():
                    cands = merged.setdefault(src, [])
                    cands.extend(t for t in tgts if t not in cands)
            _MERGED[key] = merged
        return merged

    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        return substitute_words(text, lang, self.dictionary(lang), self.params.rate, rng)
