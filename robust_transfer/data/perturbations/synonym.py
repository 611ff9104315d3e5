"""``synonym``: replace words by neighbours from a synonym lexicon, keeping capitalisation.

Lexicon format: a JSON object ``word -> [neighbour, ...]`` (the format of the
counter-fitted neighbour lexicon), one file per language in ``lexicons`` (e.g.
``{"en": "../shared/data/lexicons/counterfitted_neighbors_en.json"}``). Relative paths are
resolved against the working directory. Languages without a lexicon (or whose file is
missing) are not supported: ``supports()`` is False and applying the perturbation logs a
warning once and leaves the text unchanged.

Unit of ``rate``: the probability that each word *found in the lexicon with at least one
neighbour* is replaced (by a uniformly chosen neighbour). The realised word edit rate is
``rate`` times the lexicon's coverage of the text.

Word matching (shared with ``code_switch``):

* space-separated languages: letter runs (with inner ' ’ -), looked up lower-cased; for
  Korean a word may also match as ``stem + particle`` (학교에서 -> 학교 + 에서) and the
  particle is kept;
* ja/zh (no spaces): greedy longest match of lexicon entries (up to 8 characters) from
  left to right.

Capitalisation follows the original word (UPPER, Title, lower). Lexicons are loaded
lazily into a module-level cache keyed by (path, mtime, size), never stored on the
object, so perturbations pickle small and fingerprint deterministically.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from collections.abc import Callable

from robust_transfer.registry.perturbations import SynonymParams

from .base import Perturbation
from .scripts import NO_SPACE_LANGS, match_case

log = logging.getLogger(__name__)

_WORD_RE = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
KO_PARTICLES = tuple(
    sorted(
        "은 는 이 가 을 를 에 의 와 과 도 로 으로 에서 에게 한테 께 부터 까지 보다 처럼 만 이나 나 이며 며 "
        "에는 에서는 으로는 로는 와의 과의 에서의 으로서 로서 으로써 로써 이다 였다 이었다 였으며 이었으며".split(),
        key=len,
        reverse=True,
    )
)
MAX_CJK_MATCH = 8

_CACHE: dict[tuple, dict[str, list[str]]] = {}
_LOCK = threading.Lock()


def _file_key(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def cached_load(path: str, loader: Callable[[str], dict[str, list[str]]]) -> dict[str, list[str]]:
    """Load ``path`` with ``loader`` once per (path, mtime, size); {} if the file is missing."""
    key = _file_key(path)
    if key is None:
        log.warning("lexicon/dictionary file not found: %s", path)
        return {}
    key = key + (loader.__module__, loader.__qualname__)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = loader(path)
        return _CACHE[key]


def load_json_lexicon(path: str) -> dict[str, list[str]]:
    """JSON ``word -> [neighbours]``; keys lower-cased, empty lists dropped."""
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    out: dict[str, list[str]] = {}
    for word, neigh in raw.items():
        if isinstance(neigh, str):
            neigh = [neigh]
        cands = [n for n in neigh if isinstance(n, str) and n and n.lower() != word.lower()]
        if cands:
            out.setdefault(word.lower(), []).extend(cands)
    return out


def find_matches(text: str, lang: str, lexicon: dict[str, list[str]]) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of ``text`` whose (lower-cased) text is a lexicon key."""
    if not lexicon:
        return []
    spans: list[tuple[int, int]] = []
    if lang in NO_SPACE_LANGS:
        low = text.lower()
        n, i = len(text), 0
        while i < n:
            if not low[i].isalpha():
                i += 1
                continue
            for length in range(min(MAX_CJK_MATCH, n - i), 0, -1):
                if low[i : i + length] in lexicon:
                    spans.append((i, i + length))
                    i += length
                    break
            else:
                i += 1
        return spans
    for m in _WORD_RE.finditer(text):
        word = m.group().lower()
        if word in lexicon:
            spans.append(m.span())
        elif lang == "ko":
            for particle in KO_PARTICLES:
                if (
                    len(word) > len(particle)
                    and word.endswith(particle)
                    and word[: -len(particle)] in lexicon
                ):
                    spans.append((m.start(), m.end() - len(particle)))
                    break
    return spans


def substitute_words(
    text: str, lang: str, lexicon: dict[str, list[str]], rate: float, rng: random.Random
) -> str:
    """Replace each matched word with probability ``rate`` by one of its candidates."""
    if rate <= 0.0:
        return text
    spans = find_matches(text, lang, lexicon)
    if not spans:
        return text
    out, last = [], 0
    rnd = rng.random
    for start, end in spans:
        if rnd() >= rate:
            continue
        word = text[start:end]
        new = match_case(rng.choice(lexicon[word.lower()]), word)
        out.append(text[last:start])
        out.append(new)
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


class Synonym(Perturbation):
    name = "synonym"
    Params = SynonymParams

    def supports(self, lang: str) -> bool:
        path = self.params.lexicons.get(lang)
        return bool(path) and os.path.exists(path)

    def lexicon(self, lang: str) -> dict[str, list[str]]:
        path = self.params.lexicons.get(lang)
        return cached_load(path, load_json_lexicon) if path else {}

    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        return substitute_words(text, lang, self.lexicon(lang), self.params.rate, rng)
