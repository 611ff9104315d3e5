"""Shared fixtures: hermetic environment, one cheap tiny encoder per session, fast run arguments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache (tiny encoder, datasets) for the whole session; never the user's."""
    return tmp_path_factory.mktemp("cache")


def smoke_args(cache_dir: Path, output_dir: Path) -> list[str]:
    return [
        "experiment=smoke",
        f"cache_dir={cache_dir}",
        f"output_dir={output_dir}",
        "logger.wandb=false",
        "trainer.enable_progress_bar=false",
    ]


@pytest.fixture
def fast_args(cache_dir, tmp_path) -> list[str]:
    """CLI arguments for a seconds-long end-to-end run into a fresh output directory."""
    return smoke_args(cache_dir, tmp_path / "run")


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    """`python -m robust_transfer.fit ARGS` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "robust_transfer.fit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
