"""DDP on 2 CPU processes (gloo): the same per-language accuracies and predictions as one process.

Lightning's default DistributedSampler pads evaluation data by repeating examples; the
datamodule's UnrepeatedDistributedSampler and the module's gathered predictions keep every
example counted exactly once. The test set size is odd so that padding would show.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from robust_transfer.config import compose
from robust_transfer.keys import STAGES
from robust_transfer.pipeline import run
from tests.conftest import ROOT, run_cli, smoke_args

DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "trainer.num_threads=1"]
ODD = ["data.synthetic.test_size=61"]


def _predictions(out: Path) -> list[tuple]:
    with (out / "predictions.csv").open() as f:
        return sorted(tuple(r.values()) for r in csv.DictReader(f))


def test_ddp_evaluation_matches_one_process(cache_dir, tmp_path):
    single = tmp_path / "single"
    reference = run(compose([*smoke_args(cache_dir, single), *ODD]))

    ddp = tmp_path / "ddp"  # the same trained stages, evaluated by 2 processes
    (ddp / "checkpoints").mkdir(parents=True)
    for stage in STAGES:
        shutil.copy(single / "checkpoints" / f"{stage}.ckpt", ddp / "checkpoints")
    proc = run_cli(*smoke_args(cache_dir, ddp), *ODD, *DDP, "resume=true")
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads((ddp / "results.json").read_text())
    assert results["accuracy"] == reference["accuracy"]
    rows = _predictions(ddp)
    keys = [(split, lang, i) for split, lang, i, *_ in rows]
    assert len(set(keys)) == len(keys)  # no example repeated by a padding sampler
    assert sum(1 for split, lang, *_ in rows if (split, lang) == ("clean", "ja")) == 61
    assert rows == _predictions(single)


def test_ddp_training_with_a_regularizer_runs(cache_dir, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(*smoke_args(cache_dir, out), *DDP, "intermediate=none", "target.adversary=fgsm")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["stages"][0]["adversary"]["name"] == "fgsm"
    assert results["stages"][0]["steps"] == 8  # 256 examples / (2 ranks x 32) x 2 epochs
    rows = _predictions(out)
    keys = [(split, lang, i) for split, lang, i, *_ in rows]
    assert len(set(keys)) == len(keys)
    assert sum(1 for split, lang, *_ in rows if (split, lang) == ("clean", "ja")) == 64
    assert proc.stdout.count("Run directory:") == 1  # rank 1 writes and prints nothing


@pytest.mark.slow
def test_nan_on_one_rank_skips_the_step_on_every_rank(tmp_path):
    """Rank 1 alone sees NaN embeddings (at step 1 from the first FreeLB pass, at step 2 from
    the second, after a backward on both ranks): the job finishes, both ranks skip and count
    the same two steps, and their weights stay finite and equal. Before the checks were
    collective, rank 0 waited in the gradient all-reduce until the process group timed out."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ddp_nan_script.py"), str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert [r["skipped_steps"] for r in ranks] == [2, 2]
    assert [r["optimizer_steps"] for r in ranks] == [2, 2]  # 4 batches per rank, 2 skipped
    for name, weight in ranks[0]["state_dict"].items():
        assert torch.isfinite(weight).all(), name
        assert torch.equal(weight, ranks[1]["state_dict"][name]), name
