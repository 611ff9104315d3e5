"""The resolved recipe is what a user reading the option names would expect: the learning rate,
weight decay and epochs travel with the model, never with the base config or a task option."""

from __future__ import annotations

import shlex

import pytest
import yaml

from robust_transfer.config import CONFIG_ROOT, ConfigError, compose, group_options
from robust_transfer.keys import STAGES

HUB = {"lr": 2e-5, "weight_decay": 0.01, "warmup_ratio": 0.1}
TINY = {"lr": 1e-3, "weight_decay": 0.0, "warmup_ratio": 0.1}
E5 = {"lr": 5e-5, "weight_decay": 0.01, "warmup_ratio": 0.1}

# arguments -> (recipe of both stages, intermediate epochs, target epochs)
TABLE = [
    ([], TINY, 2, 6),
    (["experiment=smoke"], TINY, 2, 2),
    (["intermediate=synthetic_nli_pgd"], TINY, 2, 6),
    (["model=xlmr_base", "intermediate=mnli"], HUB, 3, 3),
    (["model=xlmr_large", "intermediate=mnli_pgd"], HUB, 3, 3),
    (["model=mbert", "intermediate=xnli_en"], HUB, 1, 3),
    (["intermediate=mnli", "model=xlmr_base"], HUB, 3, 3),  # order does not matter
    (["model=xlmr_base", "intermediate=mnli", "trainer.max_epochs=2"], HUB, 2, 2),
    (["model=xlmr_base", "intermediate=none"], HUB, 3, 3),
    (["model.name_or_path=/models/my-xlmr", "intermediate=mnli"], HUB, 3, 3),
    (["model=e5_small", "intermediate=nli_tsv"], E5, 5, 5),
    (["experiment=pawsx_e5_cpu"], E5, 1, 5),
    (["experiment=pawsx_e5_cpu", "intermediate=nli_tsv_fgsm"], E5, 1, 5),  # the sweep's cell
    (["experiment=pawsx_e5_cpu", "intermediate=none"], E5, 1, 5),
    (["experiment=paper_xlmr", "intermediate=mnli_freelb"], HUB, 3, 3),
    (["experiment=paper_xlmr"], HUB, 3, 3),
    (["experiment=paper_mbert"], HUB, 3, 3),
    (["experiment=pawsx_real_cpu"], {"lr": 5e-5, "weight_decay": 0.01, "warmup_ratio": 0.1}, 1, 2),
    (["model=xlmr_base", "target.lr=3e-5", "intermediate.max_epochs=1"], HUB, 1, 3),
]


@pytest.mark.parametrize("args, recipe, intermediate_epochs, target_epochs", TABLE, ids=lambda a: " ".join(a) if isinstance(a, list) else None)
def test_the_resolved_recipe_is_the_models(args, recipe, intermediate_epochs, target_epochs):
    cfg = compose(args)
    for stage in STAGES:
        expected = dict(recipe)
        if stage == "target" and "target.lr=3e-5" in args:
            expected["lr"] = 3e-5
        assert {k: cfg[stage][k] for k in expected} == pytest.approx(expected), (stage, args)
    assert (cfg.intermediate.max_epochs, cfg.target.max_epochs) == (intermediate_epochs, target_epochs)


def test_an_intermediate_option_on_the_command_line_keeps_what_the_experiment_says_of_the_stage():
    """Hydra's order: the experiment's keys merge after every option choice, also the command line's."""
    real = compose(["experiment=pawsx_real_cpu", "intermediate=xnli_en"])
    assert (real.intermediate.task, real.intermediate.train_split) == ("xnli_en", "validation[:640]")
    paper = compose(["experiment=paper_xlmr", "intermediate=mnli_freelb"])
    assert (paper.intermediate.adversary.name, paper.intermediate.select_best) == ("freelb", True)


@pytest.mark.parametrize("option", group_options("model"))
def test_every_model_option_sets_every_model_key_and_its_recipe(option):
    """Model options merge over the default's: one that left a key out would inherit tiny's."""
    text = yaml.safe_load((CONFIG_ROOT / "model" / f"{option}.yaml").read_text())
    assert {"name_or_path", "max_length", "head_dropout", "pooling", "freeze_embeddings"} <= set(text)
    assert set(text["recipe"]) == {"lr", "weight_decay", "warmup_ratio", "max_epochs"}


@pytest.mark.parametrize("option", group_options("intermediate"))
def test_no_task_option_carries_a_learning_rate(option):
    text = yaml.safe_load((CONFIG_ROOT / "intermediate" / f"{option}.yaml").read_text())
    assert not {"lr", "weight_decay", "warmup_ratio"} & set(text), option


def test_the_xlmr_sweep_command_resolves_to_the_epochs_it_says():
    sweep = yaml.safe_load((CONFIG_ROOT / "sweep" / "adversarial_intermediate_xlmr.yaml").read_text())
    fixed = [a for a in sweep["command"] if not a.startswith("${") and "=" in a]
    said = int(next(a for a in fixed if a.startswith("trainer.max_epochs=")).split("=")[1])
    for intermediate in sweep["parameters"]["intermediate"]["values"]:
        cfg = compose([*fixed, f"intermediate={intermediate}", "target.adversary=pgd", "seed=0"])
        assert cfg.target.max_epochs == said, shlex.join(fixed)
        if intermediate != "none":
            assert cfg.intermediate.max_epochs == said
        for stage in STAGES:
            assert (cfg[stage].lr, cfg[stage].weight_decay) == (2e-5, 0.01)


def test_a_model_without_a_recipe_is_an_error_naming_the_keys():
    with pytest.raises(ConfigError, match=r"no fine-tuning recipe for .*target\.lr.*model\.recipe\.lr=2e-5"):
        compose(["model.recipe.lr=null"])
    # setting the stages' own values is enough
    cfg = compose(["model.recipe.lr=null", "intermediate.lr=1e-3", "target.lr=1e-3"])
    assert cfg.target.lr == 1e-3
