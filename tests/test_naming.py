"""Run identity: seeds of one configuration share a W&B group, and every run has a readable name."""

from __future__ import annotations

import pytest

from robust_transfer.config import compose, to_container
from robust_transfer.loggers import start_wandb
from robust_transfer.naming import config_group, flatten, job_type, run_info, run_name, run_tags


def _config(*args: str) -> dict:
    return to_container(compose(["experiment=smoke", *args]))


def test_seeds_of_one_configuration_share_a_group_and_differ_in_name(tmp_path):
    a = _config("seed=0", f"output_dir={tmp_path / 'a'}")
    b = _config("seed=1", f"output_dir={tmp_path / 'b'}", "trainer.enable_progress_bar=false")
    assert config_group(a) == config_group(b)
    assert run_name(a) != run_name(b)
    assert run_info(a)["job_type"] == run_info(b)["job_type"] and run_tags(a) == run_tags(b)


@pytest.mark.parametrize(
    "change",
    [
        "adversary=pgd",
        "intermediate.adversary=fgsm",
        "target.lr=0.01",
        "model.pooling=cls",
        "data.seed=3",
    ],
)
def test_anything_but_seed_changes_the_group(change):
    base = _config()
    assert config_group(_config(change)) != config_group(base)


def test_name_shows_model_stages_adversaries_and_seed():
    name = run_name(_config("adversary=pgd", "target.adversary=none", "seed=7"))
    assert name.startswith("smoke/tiny ") and name.endswith(" s7")
    assert "synthetic_nli:pgd(eps=" in name and "synthetic_paws:none" in name
    assert run_name(_config("intermediate=none")) == "smoke/tiny synthetic_paws:none s0"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "baseline"),
        (("adversary=freelb",), "adv-both"),
        (("intermediate.adversary=smart",), "adv-intermediate"),
        (("target.adversary=r3f",), "adv-target"),
        (("intermediate=none",), "no-intermediate-baseline"),
        (("intermediate=none", "adversary=pgd"), "no-intermediate-adv-target"),
    ],
)
def test_job_type_says_which_stages_are_adversarial(args, expected):
    assert job_type(_config(*args)) == expected


def test_tags_name_model_intermediate_task_and_adversaries():
    assert run_tags(_config("intermediate.adversary=pgd")) == [
        "model:tiny",
        "intermediate:synthetic_nli",
        "intermediate-adv:pgd",
        "target-adv:none",
    ]


def test_wandb_run_gets_identity_and_dotted_config(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose(
        ["experiment=smoke", f"output_dir={tmp_path}", "logger.wandb=true", "logger.tags=[mine]"]
    )
    run = start_wandb(cfg, tmp_path)
    try:
        info = run_info(to_container(cfg))
        assert (run.name, run.group, run.job_type) == (
            info["name"],
            info["group"],
            info["job_type"],
        )
        assert list(run.tags) == [*info["tags"], "mine"]
        config = dict(run.config)
        assert config["intermediate.adversary.name"] == "none" and config["seed"] == 0
        assert set(config) == set(flatten(to_container(cfg)))
    finally:
        run.finish()
