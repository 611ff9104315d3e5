"""Every config the project ships builds every object the run would build from it.

The habit of lightning-hydra-template's `tests/test_configs.py`: for each option file under
configs/ (and each sweep's command over its grid) compose the config, then build each stage's
task and regularizer, each augmentation, every evaluation split (text perturbation or
embedding attack) and the smoothing copies through `registry.build`, as the pipeline does. So
a config that validates is one that builds; no data is read and no model is loaded.
"""

from __future__ import annotations

import itertools

import pytest
import yaml
from omegaconf import OmegaConf

from robust_transfer import registry
from robust_transfer.config import CONFIG_ROOT, GROUPS, STAGE_NAMES, compose, group_options


def build_all(cfg) -> list:
    """Every registry object a run of `cfg` builds (pipeline.prepare and evaluation's order)."""
    built = []
    seed = cfg.data.seed
    for stage in STAGE_NAMES:
        s = cfg[stage]
        if s.task == "none":
            continue
        built.append(registry.build("task", s.task))
        adversary = OmegaConf.to_container(s.adversary)
        built.append(registry.build("regularizer", adversary["name"], adversary))
        if s.augment is not None:
            built += _copies(registry.copies_spec(f"{stage}.augment", s.augment), seed + 1)
    for split in registry.eval_splits(cfg.eval.perturbations, seed):
        built.append(registry.build(split.kind, split.family, split.params))
    if cfg.eval.smoothing is not None:
        built += _copies(registry.copies_spec("eval.smoothing", cfg.eval.smoothing), seed + 1000)
    return built


def _copies(spec: registry.CopiesSpec, first_seed: int) -> list:
    return [registry.build("perturbation", spec.family, spec.params(first_seed + k)) for k in range(spec.copies)]


OPTIONS = [(g, o) for g in GROUPS for o in group_options(g)]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_file_composes_and_builds(group, option):
    cfg = compose([f"{group}={option}"])
    built = build_all(cfg)
    names = {type(b).__name__ for b in built}
    assert names & {"NoRegularizer", "FGSM", "PGD", "FreeLB", "SMART", "R3F", "RandomNoise"}
    assert len(built) >= 2 + len([k for k, v in cfg.eval.perturbations.items() if v is not None])


def _sweep_grids():
    for path in sorted((CONFIG_ROOT / "sweep").glob("*.yaml")):
        sweep = yaml.safe_load(path.read_text())
        fixed = [a for a in sweep["command"] if not a.startswith("${") and "=" in a]
        grid = {k: v["values"] for k, v in sweep["parameters"].items() if "values" in v and k != "seed"}
        for combo in itertools.product(*grid.values()):
            yield path.stem, [*fixed, *(f"{k}={v}" for k, v in zip(grid, combo, strict=True))]


SWEEPS = list(_sweep_grids())


@pytest.mark.parametrize(("sweep", "args"), SWEEPS, ids=[f"{s}:{' '.join(a[-2:])}" for s, a in SWEEPS])
def test_every_sweep_run_composes_and_builds(sweep, args):
    assert build_all(compose(args))


def test_the_default_eval_splits_are_what_evaluation_builds():
    cfg = compose([])
    splits = registry.eval_splits(cfg.eval.perturbations, cfg.data.seed)
    assert [(s.name, s.kind) for s in splits] == [
        ("char_noise", "perturbation"), ("keyboard", "perturbation"), ("punctuation", "perturbation"),
        ("whitespace", "perturbation"), ("embedding_pgd", "attack"),
    ]
    assert all(s.params.seed == cfg.data.seed for s in splits if s.kind == "perturbation")
