"""Entries of the registry and the one function that builds them.

An entry is (kind, name) -> a typed parameter dataclass and the dotted path of what implements
it ("package.module:Class"), as lightning-hydra-template's `_target_` names the class a config
instantiates. The dataclass's `__post_init__` holds every range check, so `spec` (parameters
only) validates a config without importing the implementation; `build` imports it lazily and
makes the real object from the same parameters.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from robust_transfer.suggest import did_you_mean

# kind -> the word error messages use for its names
KINDS = {
    "regularizer": "adversary",
    "perturbation": "perturbation family",
    "attack": "embedding attack",
    "task": "task",
}
COMPOSE = "robust_transfer.data.perturbations.base:Compose"  # what a "+"-joined family builds


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    params: type  # a dataclass; its __post_init__ raises ValueError naming the key and the range
    target: str  # "package.module:Attr": a class built as Attr(params, **runtime), or a ready object
    tags: tuple[str, ...] = ()  # e.g. the stage a task can be trained at


@dataclass(frozen=True)
class CombinedParams:
    """The parameters of a "+"-joined perturbation family: each part's own, in order."""

    parts: tuple[tuple[str, Any], ...]


_ENTRIES: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}


def register(kind: str, name: str, target: str, *, tags: tuple[str, ...] = ()) -> Callable[[type], type]:
    """Decorator of a parameter dataclass: `name` of `kind` takes these parameters and is built by `target`."""

    def add(params: type) -> type:
        if not dataclasses.is_dataclass(params):
            raise TypeError(f"{params.__name__} must be a dataclass")
        known = _ENTRIES[kind].get(name)
        if known is not None and known.target != target:
            raise ValueError(f"{kind} {name!r} is already registered for {known.target}")
        if "+" in name:
            raise ValueError(f"registered names may not contain '+': {name!r}")
        _ENTRIES[kind][name] = Entry(kind, name, params, target, tuple(tags))
        return params

    return add


def names(kind: str, tag: str | None = None) -> list[str]:
    """The registered names of `kind` (with `tag`, only those tagged so), sorted."""
    return sorted(n for n, e in _ENTRIES[kind].items() if tag is None or tag in e.tags)


def entry(kind: str, name: str) -> Entry:
    known = _ENTRIES[kind]
    if name not in known:
        raise ValueError(f"unknown {KINDS[kind]} '{name}'.{did_you_mean(name, known)} Valid: {', '.join(sorted(known))}.")
    return known[name]


def typed(params: type, values: Any, owner: str) -> Any:
    """`values` (a mapping, None, or already a `params` instance) as a `params` instance.

    An unknown key raises a ValueError naming `owner`, the nearest valid key and all of them.
    """
    if isinstance(values, params):
        return values
    values = plain(values)
    valid = [f.name for f in dataclasses.fields(params)]
    for key in values:
        if key not in valid:
            raise ValueError(f"unknown parameter '{key}' for {owner}.{did_you_mean(key, valid)} Valid: {', '.join(valid)}.")
    return params(**values)


def plain(values: Any) -> dict[str, Any]:
    """A plain dict of `values` (None, a mapping, or an OmegaConf node, resolved)."""
    if values is None:
        return {}
    if isinstance(values, DictConfig):
        return dict(OmegaConf.to_container(values, resolve=True))
    if not isinstance(values, Mapping):
        raise ValueError(f"parameters must be a mapping of key: value; got {values!r}")
    return dict(values)


def spec(kind: str, name: str, values: Any = None) -> Any:
    """The typed, range-checked parameters of `name` (torch-free; what config validation runs).

    `values` may repeat `name` under `name` (a whole configs/adversary/*.yaml). A perturbation
    family may join several with "+"; its parameters are then keyed by part
    (`{char_noise: {rate: 0.2}}`) and the result is a `CombinedParams`.
    """
    if kind == "perturbation" and "+" in str(name):
        return _combined(str(name), values)
    e = entry(kind, name)
    if isinstance(values, e.params):
        return values
    values = plain(values)
    if values.pop("name", name) != name:
        raise ValueError(f"{KINDS[kind]} name mismatch: building '{name}' with params for another {KINDS[kind]}")
    return typed(e.params, values, f"{KINDS[kind]} '{name}'")


def _combined(name: str, values: Any) -> CombinedParams:
    if isinstance(values, CombinedParams):
        return values
    parts = [p.strip() for p in name.split("+")]
    for part in parts:
        entry("perturbation", part)
    values = plain(values)
    for key in values:
        if key not in parts:
            raise ValueError(
                f"params for a composed perturbation '{name}' must be keyed by family ({', '.join(parts)}); got '{key}'"
            )
    return CombinedParams(tuple((p, spec("perturbation", p, values.get(p))) for p in parts))


def resolve(target: str) -> Any:
    """The object a dotted path "package.module:Attr" names (importing the module)."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def build(kind: str, name: str, values: Any = None, **runtime: Any) -> Any:
    """The real object: `spec(kind, name, values)` handed to the implementation (imported now).

    Runtime arguments that are not parameters (a regularizer's `generator`) pass through.
    """
    params = spec(kind, name, values)
    if isinstance(params, CombinedParams):
        return resolve(COMPOSE)([build(kind, part, p) for part, p in params.parts])
    target = resolve(entry(kind, name).target)
    return target(params, **runtime) if isinstance(target, type) else target


def defaults(kind: str, name: str) -> dict[str, Any]:
    """The default parameters of `name` as a plain dict (in the dataclass's field order)."""
    return dataclasses.asdict(entry(kind, name).params())
