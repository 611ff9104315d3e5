"""The config schema, group selection, overrides and the errors a user sees."""

from __future__ import annotations

import pytest

from robust_transfer.config import ConfigError, compose, group_options, help_text
from robust_transfer.keys import LANGUAGES
from tests.conftest import run_cli


def test_default_config_resolves():
    cfg = compose([])
    assert cfg.model.name_or_path == "tiny"
    assert list(cfg.data.languages) == list(LANGUAGES)
    assert cfg.intermediate.task == "synthetic_nli" and cfg.target.task == "synthetic_paws"
    assert cfg.intermediate.adversary["name"] == "none" == cfg.target.adversary["name"]
    assert "${" not in cfg.output_dir


def test_group_selection_and_dotted_override():
    cfg = compose(["model=xlmr_base", "trainer.max_epochs=2", "seed=7", "intermediate=none"])
    assert cfg.model.name_or_path == "xlm-roberta-base"
    assert cfg.model.max_length == 128
    assert cfg.trainer.max_epochs == 2 and cfg.seed == 7
    assert cfg.intermediate.task == "none"


def test_adversary_shorthand_sets_both_stages_and_stage_override_wins():
    cfg = compose(["adversary=pgd", "adversary.steps=4", "intermediate.adversary=fgsm"])
    assert cfg.target.adversary["name"] == "pgd" and cfg.target.adversary["steps"] == 4
    assert cfg.intermediate.adversary["name"] == "fgsm"


def test_stage_adversary_partial_override_inherits_the_rest():
    cfg = compose(["adversary=pgd", "target.adversary.steps=5"])
    assert cfg.target.adversary["name"] == "pgd" and cfg.target.adversary["steps"] == 5
    assert cfg.intermediate.adversary["steps"] != 5


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("adversary=nonexistent", "Valid options:"),
        ("trainer.max_epochs=-1", "'trainer.max_epochs'"),
        ("data.languages=[xx]", "unknown language(s) xx"),
        ("trainer.max_epoch=2", "Did you mean 'max_epochs'?"),
        ("trainer.max_epochs=abc", "'trainer.max_epochs'"),
        ("model.pooling=max", "Valid values: cls, mean"),
        ("adversary=pgd adversary.epsilonn=1", "Did you mean 'epsilon'?"),
        ("eval.perturbations.char_noise.rate=2", "eval.perturbations.char_noise"),
        ("nonsense", "expected GROUP=OPTION"),
    ],
)
def test_bad_input_raises_a_clear_config_error(arg, expected):
    with pytest.raises(ConfigError) as err:
        compose(arg.split())
    assert expected in str(err.value)


@pytest.mark.parametrize("arg", ["adversary=nonexistent", "trainer.max_epochs=-1", "data.languages=[xx]"])
def test_cli_errors_exit_2_without_traceback(arg):
    proc = run_cli(arg)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1  # one paragraph


def test_help_lists_groups_and_options():
    text = help_text()
    for group in ("model", "data", "adversary", "intermediate", "experiment"):
        assert f"  {group}" in text
    for option in group_options("adversary"):
        assert option in text
    proc = run_cli("--help")
    assert proc.returncode == 0 and "xlmr_base" in proc.stdout


def test_print_config_prints_resolved_yaml_and_exits(tmp_path):
    proc = run_cli("--print-config", "seed=3", f"output_dir={tmp_path / 'x'}")
    assert proc.returncode == 0
    assert "seed: 3" in proc.stdout and "name_or_path: tiny" in proc.stdout
    assert not (tmp_path / "x").exists()


def test_augment_is_validated():
    with pytest.raises(ConfigError, match="target.augment.copies"):
        compose(["target.augment={family: synonym, copies: 0}"])
    with pytest.raises(ConfigError, match="needs a 'family'"):
        compose(["target.augment={copies: 2}"])
    with pytest.raises(ConfigError, match="In 'target.augment'"):
        compose(["target.augment={family: nope}"])


def test_intermediate_option_keeps_the_default_stage_tuning(tmp_path, monkeypatch):
    default = compose([])
    selected = compose(["intermediate=synthetic_nli_pgd"])
    assert selected.intermediate.lr == default.intermediate.lr
    assert selected.intermediate.max_epochs == default.intermediate.max_epochs
    assert selected.intermediate.adversary["name"] == "pgd"
    assert compose(["intermediate=none"]).intermediate.task == "none"
