"""The package's structure: each fact in one place, and the modules of names and decisions import
nothing heavy. Static checks over the source (ast), each
shown to catch what it looks for on a small module written here."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from robust_transfer import keys
from tests.conftest import ROOT

PACKAGE = ROOT / "robust_transfer"
SOURCES = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])
NAMES = ("LANGUAGES", "STAGES", "DATA_SPLITS", "CLEAN", "GENERALIZED_SPLIT")
HEAVY = ("torch", "datasets", "transformers", "pytorch_lightning", "lightning", "wandb", "matplotlib")


def test_the_names_are_the_contract():
    assert keys.LANGUAGES == tuple("en de es fr ja ko zh".split())  # ISO 639-1, English first
    assert keys.STAGES == ("intermediate", "target")
    assert keys.DATA_SPLITS == ("train", "validation", "test")
    assert (keys.CLEAN, keys.GENERALIZED_SPLIT) == ("clean", "generalized")


# ---------------------------------------------------------------- one place for each name


def _code(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    lines = [line for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()]
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def spelled_out(path: Path, names: tuple[str, ...]) -> list[int]:
    """Lines of `path` holding a tuple, list or set literal of exactly the strings `names`."""
    lines = []
    for node in ast.walk(ast.parse(_code(path), str(path))):
        if isinstance(node, ast.Tuple | ast.List | ast.Set) and node.elts:
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                if sorted(e.value for e in node.elts) == sorted(names):
                    lines.append(node.lineno)
    return lines


def test_the_language_list_is_spelled_out_only_in_keys():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    places = {
        str(p.relative_to(ROOT)): spelled_out(p, keys.LANGUAGES) for p in [*SOURCES, *notebooks]
    }
    assert {p: len(lines) for p, lines in places.items() if lines} == {"robust_transfer/keys.py": 1}


@pytest.mark.parametrize("names", [keys.STAGES, keys.DATA_SPLITS], ids=["stages", "data_splits"])
def test_stage_and_split_names_are_spelled_out_only_in_keys(names):
    places = {str(p.relative_to(ROOT)): spelled_out(p, names) for p in PACKAGE.rglob("*.py")}
    assert [p for p, lines in places.items() if lines] == ["robust_transfer/keys.py"]


def test_the_names_are_imported_from_keys_only():
    wrong = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module != "robust_transfer.keys":
                wrong += [f"{path.relative_to(ROOT)}: {a.name} from {node.module}" for a in node.names if a.name in NAMES]
            if isinstance(node, ast.Assign) and path != PACKAGE / "keys.py":
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
                wrong += [f"{path.relative_to(ROOT)}: defines {t}" for t in targets if t in NAMES]
    assert wrong == []


def test_the_checks_find_a_spelled_out_list_and_a_wrong_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('LANGS = ["zh", "en", "de", "es", "fr", "ja", "ko"]\nOTHER = ("en", "de")\n')
    assert spelled_out(module, keys.LANGUAGES) == [1]
    notebook = tmp_path / "n.ipynb"
    source = ['%matplotlib inline\n', 'for s in ("intermediate", "target"):\n', '    pass']
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}]}))
    assert spelled_out(notebook, keys.STAGES) == [2]


# ---------------------------------------------------------------- light modules


@pytest.mark.parametrize(
    "module", ["robust_transfer.keys", "robust_transfer.wandb_env", "robust_transfer.plots", "robust_transfer.naming"]
)
def test_module_of_names_and_decisions_imports_nothing_heavy(module):
    code = f"import sys, {module}; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
