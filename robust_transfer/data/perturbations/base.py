"""The perturbation interface, composition and the registry.

A perturbation is a label-preserving text transformation with a ``rate`` and a ``seed``.
``perturb_text`` holds the family's logic; ``__call__`` applies it to the chosen fields of
one example with an rng seeded from a *stable* hash (blake2b) of
``(seed, name, lang, example id, field)``, so results are identical across processes,
Python versions and ``PYTHONHASHSEED`` values, and independent of batch boundaries.
When an example has no ``id`` the field's text itself is hashed instead.

Objects pickle as ``(class, (params,))`` (see ``__reduce__``): lexicons and other lazy
caches live at module level, never on the instance, so ``datasets`` fingerprints stay
the same before and after first use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from robust_transfer.registry import build, entry, names, typed
from robust_transfer.registry.perturbations import DEFAULT_FIELDS, BaseParams

log = logging.getLogger(__name__)


def _default_fields() -> list[str]:
    return list(DEFAULT_FIELDS)


def stable_seed(*parts: Any) -> int:
    """A 64-bit integer derived from ``parts`` with blake2b (stable across processes)."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


class Perturbation(ABC):
    """Base class of every perturbation family (registered with its parameters, and their
    range checks, in robust_transfer/registry/perturbations.py)."""

    name: ClassVar[str] = "base"
    Params: ClassVar[type] = BaseParams

    def __init__(self, params: Any = None):
        if params is not None and not isinstance(params, Mapping | self.Params):
            raise TypeError(
                f"{type(self).__name__} expects {self.Params.__name__} or a dict, got {type(params).__name__}"
            )
        self.params = typed(self.Params, params, f"perturbation family '{self.name}'")
        self._warned: set = set()

    # -- the family's core -----------------------------------------------------------
    def supports(self, lang: str) -> bool:
        """Whether this perturbation can change text in ``lang`` (default: always)."""
        return True

    @abstractmethod
    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        """Return a perturbed copy of ``text`` (a sentence in language ``lang``)."""

    # -- applying to examples ----------------------------------------------------------
    def rng_for(self, lang: str, example_id: Any, field_name: str, text: str) -> random.Random:
        key = example_id if example_id is not None else "text:" + text
        return random.Random(stable_seed(self.params.seed, self.name, lang, key, field_name))

    def __call__(self, example: dict, lang: str) -> dict:
        """Return a copy of ``example`` with the chosen fields perturbed (label untouched)."""
        out = dict(example)
        if not self._check_lang(lang):
            return out
        ex_id = example.get("id")
        for f in self.params.fields:
            text = example.get(f)
            if isinstance(text, str) and text:
                out[f] = self.perturb_text(text, lang, self.rng_for(lang, ex_id, f, text))
        return out

    def apply_batch(self, batch: dict[str, list], lang: str) -> dict[str, list]:
        """Batched twin of ``__call__`` for ``datasets.map(batched=True)``."""
        out = {k: list(v) for k, v in batch.items()}
        if not self._check_lang(lang):
            return out
        ids = batch.get("id")
        for f in self.params.fields:
            col = batch.get(f)
            if col is None:
                continue
            new = out[f]
            for i, text in enumerate(col):
                if isinstance(text, str) and text:
                    ex_id = ids[i] if ids is not None else None
                    new[i] = self.perturb_text(text, lang, self.rng_for(lang, ex_id, f, text))
        return out

    def _check_lang(self, lang: str) -> bool:
        if self.supports(lang):
            return True
        if lang not in self._warned:
            self._warned.add(lang)
            log.warning(
                "perturbation %r does not support language %r; leaving text unchanged",
                self.name,
                lang,
            )
        return False

    # -- pickling / display ------------------------------------------------------------
    def __reduce__(self):
        return (type(self), (self.params,))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.params == other.params  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return stable_seed(type(self).__name__, repr(self.params))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


@dataclass
class ComposeParams:
    """Compose has no hyper-parameters of its own; its children carry theirs."""

    rate: float = 1.0  # unused (each child has its own rate); kept for a uniform interface
    fields: list[str] = field(
        default_factory=_default_fields
    )  # unused; children choose their fields
    seed: int = 0  # unused; children have their own seeds


class Compose(Perturbation):
    """Apply several perturbations in sequence; its name is the children's names joined by "+".

    ``supports(lang)`` is True when any child supports ``lang``; children that do not are
    skipped for that language. Each child draws from its own rng (its own name/seed), so
    ``Compose([a, b])`` gives the same result as applying ``a`` then ``b``.
    """

    Params = ComposeParams

    def __init__(self, perturbations: Sequence[Perturbation]):
        if not perturbations:
            raise ValueError("Compose needs at least one perturbation")
        self.perturbations = list(perturbations)
        super().__init__(ComposeParams())

    @property
    def name(self) -> str:  # type: ignore[override]
        return "+".join(p.name for p in self.perturbations)

    def supports(self, lang: str) -> bool:
        return any(p.supports(lang) for p in self.perturbations)

    def perturb_text(self, text: str, lang: str, rng: random.Random) -> str:
        for p in self.perturbations:
            if p.supports(lang):
                text = p.perturb_text(text, lang, rng)
        return text

    def __call__(self, example: dict, lang: str) -> dict:
        out = dict(example)
        for p in self.perturbations:
            if p.supports(lang):
                out = p(out, lang)
        return out

    def apply_batch(self, batch: dict[str, list], lang: str) -> dict[str, list]:
        out = {k: list(v) for k, v in batch.items()}
        for p in self.perturbations:
            if p.supports(lang):
                out = p.apply_batch(out, lang)
        return out

    def __reduce__(self):
        return (Compose, (self.perturbations,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Compose) and self.perturbations == other.perturbations

    def __hash__(self) -> int:
        return stable_seed("Compose", *[hash(p) for p in self.perturbations])

    def __repr__(self) -> str:
        return f"Compose({self.perturbations!r})"


# -- building ----------------------------------------------------------------------------


def build_perturbation(name: str, params: Mapping[str, Any] | None = None) -> Perturbation:
    """`registry.build("perturbation", name, params)`: a family by name.

    ``name`` may join several families with "+" (e.g. ``"char_noise+punctuation"``); then
    ``params`` maps each family name to its own parameter dict (missing ones use defaults).
    Unknown families and parameters raise ``ValueError`` naming the valid choices.
    """
    return build("perturbation", name, params)


def default_params(name: str) -> dict:
    """The default parameters of a family as a plain dict (for configs and docs)."""
    return dataclasses.asdict(entry("perturbation", name).params())


def families() -> list[str]:
    """The registered family names."""
    return names("perturbation")


def weighted_choice(rng: random.Random, options: Sequence[str], weights: Sequence[float]) -> str:
    """``rng.choices`` for one item, with a cumulative scan (no list allocation)."""
    total = sum(weights)
    x = rng.random() * total
    acc = 0.0
    for opt, w in zip(options, weights, strict=True):
        acc += w
        if x < acc:
            return opt
    return options[-1]


def sample_positions(rng: random.Random, candidates: Sequence[int], p: float) -> list[int]:
    """Each candidate independently with probability ``p`` (in order)."""
    if p <= 0.0 or not candidates:
        return []
    if p >= 1.0:
        return list(candidates)
    rnd = rng.random
    return [c for c in candidates if rnd() < p]


def apply_edits(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """`text` with each `(start, end, replacement)` applied, in the given order (sorted by start);
    an edit that begins inside an earlier one's span is dropped, insertions (start == end) at the
    same place all apply."""
    out, last = [], 0
    for start, end, rep in edits:
        if start < last:
            continue
        out += (text[last:start], rep)
        last = end
    out.append(text[last:])
    return "".join(out)
