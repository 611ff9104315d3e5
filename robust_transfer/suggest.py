"""The one "did you mean" of every error message (config keys, options, registry names, parameters)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, candidates: Iterable[object]) -> str:
    """` Did you mean 'x'?` for the candidate nearest to `word` (difflib, ratio >= 0.5), else ``."""
    match = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
