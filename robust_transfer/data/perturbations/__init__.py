"""Label-preserving, seeded text perturbations for PAWS-X style examples.

>>> from robust_transfer.data.perturbations import build_perturbation
>>> p = build_perturbation("char_noise", {"rate": 0.1, "seed": 3})
>>> p({"id": 0, "sentence1": "Hallo Welt", "sentence2": "Hallo", "label": 1}, "de")["label"]
1

Families (see each module's docstring): ``char_noise``, ``keyboard``, ``punctuation``,
``whitespace``, ``synonym``, ``code_switch``; join names with "+" to compose them. Their
names and parameters are registered in robust_transfer/registry/perturbations.py, and
``build_perturbation`` is the registry's ``build("perturbation", ...)``.
"""

from .base import (
    BaseParams,
    Compose,
    Perturbation,
    build_perturbation,
    default_params,
    families,
    stable_seed,
)
from .char_noise import CharNoise, CharNoiseParams
from .code_switch import CodeSwitch, CodeSwitchParams
from .keyboard import Keyboard, KeyboardParams
from .punctuation import Punctuation, PunctuationParams
from .stats import levenshtein, perturbation_stats
from .synonym import Synonym, SynonymParams
from .whitespace import Whitespace, WhitespaceParams

__all__ = [
    "BaseParams",
    "Compose",
    "Perturbation",
    "build_perturbation",
    "default_params",
    "families",
    "stable_seed",
    "CharNoise",
    "CharNoiseParams",
    "Keyboard",
    "KeyboardParams",
    "Punctuation",
    "PunctuationParams",
    "Whitespace",
    "WhitespaceParams",
    "Synonym",
    "SynonymParams",
    "CodeSwitch",
    "CodeSwitchParams",
    "levenshtein",
    "perturbation_stats",
]
