"""`--print-config` and config errors answer without importing the heavy stack.

Runs the CLI under `python -X importtime` and reads which modules it imported: neither the
resolved config nor a config error may load torch, datasets, transformers or Lightning.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import HEAVY_LIBRARIES as HEAVY
from tests.conftest import ROOT


def _importtime(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "robust_transfer.fit", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", proc.stderr, flags=re.M))
    assert modules, "no -X importtime output"
    return proc, modules


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def test_print_config_imports_no_heavy_library():
    proc, modules = _importtime("--print-config")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "name_or_path: tiny" in proc.stdout
    assert "robust_transfer.registry" in modules  # validation ran through the registry
    assert _heavy(modules) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("adversary=pgd", "adversary.epsilon=-1"), "error: In 'intermediate.adversary': epsilon must be a number >= 0; got -1"),
        (("eval.perturbations.embedding_pgd.stepz=2",), "error: In 'eval.perturbations.embedding_pgd': unknown parameter 'stepz'"),
        (("target.task=pawx",), "error: Invalid value 'pawx' for 'target.task'. Did you mean 'pawsx'?"),
    ],
)
def test_a_config_error_exits_2_naming_the_key_without_heavy_imports(args, message):
    proc, modules = _importtime(*args)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), errors
    assert _heavy(modules) == []
