"""The registry: torch-free typed parameters, one build path, one "did you mean"."""

from __future__ import annotations

import dataclasses

import pytest

from robust_transfer import registry
from robust_transfer.suggest import did_you_mean
from tests.conftest import heavy_imports

ENTRIES = [(kind, name) for kind in registry.KINDS for name in registry.names(kind)]


@pytest.mark.parametrize(("kind", "name"), ENTRIES, ids=[f"{k}:{n}" for k, n in ENTRIES])
def test_every_entry_builds_from_its_default_parameters(kind, name):
    entry = registry.entry(kind, name)
    built = registry.build(kind, name)
    assert dataclasses.is_dataclass(entry.params)
    if kind == "task":
        assert built.name == name
    else:  # the class at the entry's target takes exactly the registered parameters
        assert built.params == entry.params()
        assert getattr(type(built), "Params", entry.params) is entry.params
        assert getattr(built, "name", name) == name


def test_importing_the_registry_and_checking_parameters_loads_no_heavy_library():
    code = (
        "from robust_transfer import registry; "
        "registry.spec('regularizer', 'pgd', {'epsilon': 0.5}); "
        "registry.eval_splits({'x': {'family': 'char_noise+keyboard'}, 'y': {'family': 'embedding_pgd'}}, 0)"
    )
    assert heavy_imports(code) == []


@pytest.mark.parametrize(
    ("kind", "name", "values", "message"),
    [
        ("regularizer", "pgdd", {}, "unknown adversary 'pgdd'. Did you mean 'pgd'? Valid: fgsm, freelb"),
        ("regularizer", "pgd", {"alpah": 1}, "unknown parameter 'alpah' for adversary 'pgd'. Did you mean 'alpha'?"),
        ("regularizer", "pgd", {"steps": -1}, "steps must be an integer >= 0; got -1"),
        ("perturbation", "keybord", {}, "unknown perturbation family 'keybord'. Did you mean 'keyboard'?"),
        ("perturbation", "keyboard", {"rate": 1.5}, "rate must be in [0, 1]; got 1.5"),
        ("perturbation", "char_noise", {"swap": -1}, "char_noise: operation weights must be >= 0"),
        ("perturbation", "char_noise+keyboard", {"rate": 0.1}, "must be keyed by family (char_noise, keyboard)"),
        ("attack", "embedding_pgd", {"restarts": 0}, "restarts must be an integer >= 1; got 0"),
        ("attack", "embedding_pgd", {"restarts": 2, "random_init": False}, "restarts > 1 needs random_init"),
        ("attack", "embedding_nois", {}, "unknown embedding attack 'embedding_nois'. Did you mean 'embedding_noise'?"),
        ("task", "mnlii", {}, "unknown task 'mnlii'. Did you mean 'mnli'?"),
    ],
)
def test_errors_name_the_key_and_what_is_valid(kind, name, values, message):
    with pytest.raises(ValueError) as err:
        registry.spec(kind, name, values)
    assert message in str(err.value)


def test_a_combined_family_gets_the_seed_in_each_part_and_validation_matches_evaluation():
    (split,) = registry.eval_splits({"noisy": {"family": "char_noise+punctuation", "char_noise": {"rate": 0.2}}}, 7)
    assert split.kind == "perturbation" and split.seed == 7
    parts = dict(split.params.parts)
    assert parts["char_noise"].rate == 0.2 and parts["char_noise"].seed == 7 and parts["punctuation"].seed == 7
    built = registry.build("perturbation", split.family, split.params)
    assert built.name == "char_noise+punctuation"
    assert [p.params.seed for p in built.perturbations] == [7, 7]
    # a seed the user set wins; a seed at the top of a combined family is named as the error
    (own,) = registry.eval_splits({"k": {"family": "keyboard", "seed": 3}}, 7)
    assert own.params.seed == 3
    with pytest.raises(ValueError, match=r"In 'eval.perturbations.x': .*keyed by family .*got 'seed'"):
        registry.eval_splits({"x": {"family": "char_noise+keyboard", "seed": 3}}, 7)
    with pytest.raises(ValueError, match="must be named anything but 'clean'"):
        registry.eval_splits({"clean": {"family": "keyboard"}}, 0)
    assert registry.eval_splits({"off": None}, 0) == []


def test_did_you_mean():
    assert did_you_mean("max_epoch", ["max_epochs", "seed"]) == " Did you mean 'max_epochs'?"
    assert did_you_mean("zzz", ["max_epochs"]) == ""
