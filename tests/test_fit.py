"""End-to-end runs of `python -m robust_transfer.fit` on the fast offline config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from robust_transfer.config import compose
from robust_transfer.pipeline import STAGE_KEY, run
from tests.conftest import ROOT


def _run(args: list[str]) -> tuple[dict, Path]:
    cfg = compose(args)
    return run(cfg), Path(cfg.output_dir)


def test_run_directory_follows_the_contract(fast_args):
    results, out = _run(fast_args)
    for name in ("config.yaml", "results.json", "metrics.csv", "report.md", "predictions.csv"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == ["accuracy.png", "degradation.png"]
    assert {"intermediate.ckpt", "target.ckpt", "last.ckpt"} <= {p.name for p in (out / "checkpoints").iterdir()}

    saved = json.loads((out / "results.json").read_text())
    langs = ["en", "de", "es", "fr", "ja", "ko", "zh"]
    assert list(saved["accuracy"]) == ["clean", "char_noise"]
    for split in saved["accuracy"].values():
        assert list(split) == langs and all(0.0 <= v <= 1.0 for v in split.values())
    clean, noisy = saved["accuracy"]["clean"], saved["accuracy"]["char_noise"]
    assert saved["degradation"]["char_noise"] == pytest.approx({k: clean[k] - noisy[k] for k in langs})
    summary = saved["summary"]
    assert summary["zero_shot_avg"] == pytest.approx(sum(clean[k] for k in langs[1:]) / 6)
    assert summary["transfer_gap"] == pytest.approx(clean["en"] - summary["zero_shot_avg"])
    assert set(summary["degradation_avg"]) == {"char_noise"}
    assert [s["name"] for s in saved["stages"]] == ["intermediate", "target"]
    assert saved["stages"][0]["task"] == "synthetic_nli" and saved["stages"][0]["train_examples"] == 256
    assert saved["stages"][1]["steps"] == 16 and saved["stages"][1]["adversary"]["name"] == "none"
    assert saved["config"]["seed"] == 0

    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "target/train/loss" in header and "accuracy/clean/ja" in header
    predictions = (out / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 2 * 7 * 64
    assert "| char_noise" in (out / "report.md").read_text() or "char_noise" in (out / "report.md").read_text()


def test_intermediate_none_runs_the_target_stage_only(fast_args):
    results, _ = _run([*fast_args, "intermediate=none"])
    assert [s["name"] for s in results["stages"]] == ["target"]


def test_same_seed_gives_identical_accuracies(fast_args, tmp_path):
    first, _ = _run(fast_args)
    second, _ = _run([*fast_args, f"output_dir={tmp_path / 'again'}"])
    assert first["accuracy"] == second["accuracy"]
    other, _ = _run([*fast_args, f"output_dir={tmp_path / 'other'}", "seed=1"])
    assert other["accuracy"] != first["accuracy"]


def test_existing_run_directory_needs_resume(fast_args):
    _run(fast_args)
    proc = subprocess.run(
        [sys.executable, "-m", "robust_transfer.fit", *fast_args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2 and "resume=true" in proc.stderr and "Traceback" not in proc.stderr


def _stage_of(ckpt: Path) -> str | None:
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=False).get(STAGE_KEY)
    except Exception:  # being written right now
        return None


def test_killed_run_resumes_to_the_same_results(fast_args, tmp_path):
    args = [*fast_args, "trainer.max_epochs=4"]
    reference, _ = _run([*args, f"output_dir={tmp_path / 'reference'}"])

    out = Path(compose(args).output_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "robust_transfer.fit", *args], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 240
    try:
        # kill it once the target stage has written its first epoch checkpoint
        while time.time() < deadline and proc.poll() is None:
            last = out / "checkpoints" / "last.ckpt"
            if last.exists() and _stage_of(last) == "target":
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (out / "results.json").exists()
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] < 3

    resumed, _ = _run([*args, "resume=true"])
    assert resumed["accuracy"] == reference["accuracy"]
    assert [s["steps"] for s in resumed["stages"]] == [s["steps"] for s in reference["stages"]]


def test_wandb_offline_run_holds_the_degradation_table(fast_args, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    results, out = _run([*fast_args, "logger.wandb=true"])
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    tables = list(runs[0].rglob("degradation_table*.table.json"))
    assert tables, "no degradation table in the offline run"
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["lang", "split", "clean", "perturbed", "degradation"]
    rows = {(r[0], r[1]): r for r in table["data"]}
    assert set(rows) == {(lang, "char_noise") for lang in results["accuracy"]["clean"]}
    ja = rows[("ja", "char_noise")]
    assert ja[4] == pytest.approx(results["degradation"]["char_noise"]["ja"])
    summary = json.loads(next(runs[0].rglob("wandb-summary.json")).read_text())
    assert summary["degradation/char_noise/ja"] == pytest.approx(ja[4])
