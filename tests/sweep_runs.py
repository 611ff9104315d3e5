"""The real smoke sweep, run once per session and shared by the sweep, aggregate and notebook
tests: started, killed after its first finished run, restarted to completion (2 runs at once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

SMOKE_SWEEP = ROOT / "configs" / "sweep" / "smoke.yaml"
_DONE: dict[Path, tuple] = {}  # one run per session, whichever module asks first


def smoke_sweep_env(cache_dir: Path) -> dict[str, str]:
    return {**os.environ, "ROBUST_TRANSFER_CACHE": str(cache_dir), "WANDB_MODE": "disabled"}


def _finished(root: Path) -> int:
    return len(list(root.glob("*/results.json")))


@pytest.fixture(scope="session")
def smoke_sweep_runs(cache_dir, tmp_path_factory) -> tuple[Path, dict, dict]:
    """(output root, first invocation, second invocation) of configs/sweep/smoke.yaml."""
    if cache_dir in _DONE:
        return _DONE[cache_dir]
    root = tmp_path_factory.mktemp("smoke_sweep")
    cmd = [sys.executable, "-m", "robust_transfer.sweep", str(SMOKE_SWEEP), "--output-root", str(root), "--local"]
    env = smoke_sweep_env(cache_dir)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while _finished(root) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # midway: the second run is in flight
    stdout, _ = proc.communicate(timeout=120)
    first = {"returncode": proc.returncode, "stdout": stdout, "finished": _finished(root)}
    done = subprocess.run([*cmd, "--parallel", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    second = {"returncode": done.returncode, "stdout": done.stdout + done.stderr}
    _DONE[cache_dir] = (root, first, second)
    return _DONE[cache_dir]
