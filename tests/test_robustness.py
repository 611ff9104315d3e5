"""On the default task, PGD adversarial training buys robustness to the embedding-space PGD attack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

ATTACK = "{embedding_pgd: {family: embedding_pgd, epsilon: 0.3, alpha: 0.1, steps: 5}}"


@pytest.mark.slow
def test_pgd_trained_model_loses_less_under_embedding_pgd(default_encoder_cache, tmp_path):
    # the default encoder: under PGD, encoders with 2000 or 4000 pretraining steps stay at chance
    cache = default_encoder_cache
    common = [
        f"cache_dir={cache}", "intermediate=none", "data.synthetic.test_size=300", "eval.generalized=false",
        f"eval.perturbations={ATTACK}", "logger.wandb=false", "trainer.enable_progress_bar=false",
        "trainer.num_threads=1",
    ]
    runs = {"clean": ["target.adversary=none"], "pgd": ["target.adversary=pgd_tiny"]}
    procs = {  # one core each
        name: subprocess.Popen(
            [sys.executable, "-m", "robust_transfer.fit", *common, f"output_dir={tmp_path / name}", *extra],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        for name, extra in runs.items()
    }
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{name}: {err[-3000:]}"
    clean, pgd = (json.loads((tmp_path / name / "results.json").read_text()) for name in runs)

    assert pgd["stages"][0]["adversary"]["name"] == "pgd"
    # the PGD model learned the task (a model stuck at chance cannot lose accuracy either)
    assert pgd["accuracy"]["clean"]["en"] >= 0.75
    drop_clean, drop_pgd = clean["degradation"]["embedding_pgd"], pgd["degradation"]["embedding_pgd"]
    assert drop_pgd["en"] < drop_clean["en"] - 0.2
    assert pgd["summary"]["degradation_avg"]["embedding_pgd"] < clean["summary"]["degradation_avg"]["embedding_pgd"]
    assert pgd["accuracy"]["embedding_pgd"]["en"] > clean["accuracy"]["embedding_pgd"]["en"]
