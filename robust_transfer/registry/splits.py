"""`eval.perturbations`, parsed once: each split's family, typed parameters and seed; and the
`{family, copies, ...}` specs of RS-DA augmentation and smoothed prediction.

Config validation, evaluation and the dashboard all read the evaluation splits through
`eval_splits` (and validation and the training data the copies through `copies_spec`), so what
validation accepts is exactly what the run builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from robust_transfer.keys import CLEAN
from robust_transfer.registry.core import names, plain, spec


@dataclass(frozen=True)
class SplitSpec:
    """One perturbed evaluation split."""

    name: str  # the split's name in results.json (the key under eval.perturbations)
    family: str  # a perturbation family ("a+b" joins several) or an embedding attack
    kind: str  # "perturbation" (applied to the text beforehand) or "attack" (in the test step)
    params: Any  # the typed parameters; a text perturbation's carry its seed
    seed: int | None  # the run seed a text perturbation was given (a seed in its params wins); attacks: None, seeded per batch


def eval_splits(perturbations: Mapping[str, Any] | None, seed: int) -> list[SplitSpec]:
    """Every non-null `eval.perturbations` entry `{name: {family: F, ...params}}` (family
    defaults to the name), with `seed` (data.seed) given to text perturbations that set none.
    A ValueError names the entry's key and what is wrong."""
    out = []
    for name, values in plain(perturbations).items():
        if values is None:
            continue
        if name == CLEAN:
            raise ValueError(f"Invalid value '{CLEAN}' for 'eval.perturbations': must be named anything but '{CLEAN}'.")
        try:
            values = plain(values)
            family = str(values.pop("family", name))
            if family in names("attack"):
                out.append(SplitSpec(name, family, "attack", spec("attack", family, values), None))
            else:
                out.append(SplitSpec(name, family, "perturbation", seeded(family, values, seed), seed))
        except (ValueError, TypeError) as err:
            raise ValueError(f"In 'eval.perturbations.{name}': {err}") from None
    return out


@dataclass(frozen=True)
class CopiesSpec:
    """`copies` perturbed copies from one family (`{stage}.augment`, `eval.smoothing`)."""

    family: str
    copies: int
    values: dict[str, Any]  # the family's parameters as given (each copy gets its own seed)

    def params(self, seed: int) -> Any:
        """The typed parameters of the copy drawn with `seed`."""
        return seeded(self.family, self.values, seed)


def copies_spec(key: str, values: Mapping[str, Any]) -> CopiesSpec:
    """`{family: F, copies: N, ...params}` at config key `key`; a ValueError names the key."""
    values = plain(values)
    copies = values.pop("copies", 1)
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"Invalid value {copies!r} for '{key}.copies': must be an integer >= 1.")
    if "family" not in values:
        raise ValueError(f"'{key}' needs a 'family' (a perturbation family such as synonym).")
    out = CopiesSpec(str(values.pop("family")), copies, values)
    try:
        out.params(0)
    except (ValueError, TypeError) as err:
        raise ValueError(f"In '{key}': {err}") from None
    return out


def seeded(family: str, values: Mapping[str, Any], seed: int) -> Any:
    """A perturbation's typed parameters with the run's `seed` where the user set none: a
    combined family (`char_noise+punctuation`) gives it to each part, whose own parameters are
    keyed by the part's name (`{char_noise: {rate: 0.2}}`)."""
    values = plain(values)
    if "+" not in family:
        return spec("perturbation", family, {"seed": seed, **values})
    parts = [p.strip() for p in family.split("+")]
    if any(k not in parts for k in values):  # spec words the error; the seed must not be what it names
        return spec("perturbation", family, values)
    return spec("perturbation", family, {p: {"seed": seed, **plain(values.get(p))} for p in parts})

