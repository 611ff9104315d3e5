"""The text perturbation families' parameters; implemented in robust_transfer/data/perturbations/.

Every family has `rate`, `fields` and `seed` (`BaseParams`); each adds the knobs its module's
docstring explains. A family joined with "+" (`char_noise+punctuation`) takes each part's
parameters keyed by the part's name (`core.CombinedParams`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from robust_transfer.registry.checks import check_fraction, check_nonnegative
from robust_transfer.registry.core import register

_AT = "robust_transfer.data.perturbations"
DEFAULT_FIELDS: tuple[str, ...] = ("sentence1", "sentence2")


def _default_fields() -> list[str]:
    return list(DEFAULT_FIELDS)


def _no_paths() -> dict[str, str]:
    return {}


@dataclass
class BaseParams:
    """Hyper-parameters every family has."""

    rate: float = 0.1  # perturbation strength in [0, 1]; its unit is documented per family
    fields: list[str] = field(default_factory=_default_fields)  # example fields to perturb
    seed: int = 0  # base seed; each (example, field) gets its own rng derived from it

    def __post_init__(self):
        check_fraction("rate", self.rate)


@register("perturbation", "char_noise", f"{_AT}.char_noise:CharNoise")
@dataclass
class CharNoiseParams(BaseParams):
    rate: float = 0.05  # expected fraction of non-whitespace characters edited
    swap: float = 1.0  # relative weight of swapping a character with its right neighbour
    delete: float = 1.0  # relative weight of deleting a character
    insert: float = 1.0  # relative weight of inserting a same-script character after it
    substitute: float = 1.0  # relative weight of replacing it by another same-script character

    def __post_init__(self):
        super().__post_init__()
        weights = {"swap": self.swap, "delete": self.delete, "insert": self.insert, "substitute": self.substitute}
        if any(float(w) < 0 for w in weights.values()) or sum(map(float, weights.values())) <= 0:
            raise ValueError(f"char_noise: operation weights must be >= 0 with a positive sum, got {weights}")


@register("perturbation", "keyboard", f"{_AT}.keyboard:Keyboard")
@dataclass
class KeyboardParams(BaseParams):
    rate: float = 0.05  # expected fraction of non-whitespace characters mistyped


@register("perturbation", "punctuation", f"{_AT}.punctuation:Punctuation")
@dataclass
class PunctuationParams(BaseParams):
    rate: float = 0.3  # probability that a punctuation site is edited (see module docstring)
    drop: float = 1.0  # relative weight of dropping an existing mark
    change: float = 1.0  # relative weight of changing an existing mark into another one
    add: float = 0.25  # a word end gets a new mark with probability rate * add
    width_change: float = 0.5  # ja/zh: probability that a changed mark becomes its ASCII form

    def __post_init__(self):
        super().__post_init__()
        check_nonnegative(drop=self.drop, change=self.change, add=self.add)
        check_fraction("width_change", self.width_change)


@register("perturbation", "whitespace", f"{_AT}.whitespace:Whitespace")
@dataclass
class WhitespaceParams(BaseParams):
    rate: float = 0.1  # probability that a whitespace site is edited (see module docstring)
    drop: float = 1.0  # relative weight of deleting an existing space
    double: float = 1.0  # relative weight of doubling an existing space
    replace: float = 1.0  # relative weight of replacing a space by U+3000 (CJK) / U+00A0
    split: float = 0.5  # a word gets an inner space with probability rate * split
    fullwidth: float = 0.5  # ja/zh: probability that an inserted space is U+3000

    def __post_init__(self):
        super().__post_init__()
        check_nonnegative(drop=self.drop, double=self.double, replace=self.replace, split=self.split)
        check_fraction("fullwidth", self.fullwidth)


@register("perturbation", "synonym", f"{_AT}.synonym:Synonym")
@dataclass
class SynonymParams(BaseParams):
    rate: float = 0.3  # probability that a word found in the lexicon is replaced
    lexicons: dict[str, str] = field(default_factory=_no_paths)  # lang -> path of a JSON word -> [neighbours] file


@register("perturbation", "code_switch", f"{_AT}.code_switch:CodeSwitch")
@dataclass
class CodeSwitchParams(BaseParams):
    rate: float = 0.3  # probability that a word found in the dictionaries is translated
    dictionaries: dict[str, str] = field(default_factory=_no_paths)  # "src-tgt" -> MUSE file; src sentences get tgt words

    def __post_init__(self):
        super().__post_init__()
        for key in self.dictionaries:
            if len(key.split("-")) != 2 or not all(key.split("-")):
                raise ValueError(f"code_switch: dictionary keys look like 'en-de' (source-target), got {key!r}")
