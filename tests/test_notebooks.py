"""Every notebook executes top to bottom on the smoke sweep's runs, and is stored without outputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT
from tests.sweep_runs import smoke_sweep_runs  # noqa: F401 (fixture)

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert "degradation_analysis.ipynb" in {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs"


@pytest.fixture(scope="module")
def runs_with_generalized(smoke_sweep_runs, tmp_path_factory) -> Path:  # noqa: F811
    """The smoke sweep's runs, one of them given a `generalized` table (drawn as a heatmap)."""
    root, _, _ = smoke_sweep_runs
    copy = tmp_path_factory.mktemp("nb_runs") / "runs"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("checkpoints", "wandb"))
    results_path = sorted(copy.glob("*/results.json"))[0]
    results = json.loads(results_path.read_text())
    langs = list(results["accuracy"]["clean"])
    results["generalized"] = {a: {b: 0.5 for b in langs} for a in langs}
    results_path.write_text(json.dumps(results))
    return copy


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, runs_with_generalized, monkeypatch, tmp_path):
    monkeypatch.setenv("RT_RUNS", str(runs_with_generalized))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "2 configurations, 4 runs" in text
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 3  # degradation bars, paired bars, the generalized heatmap
