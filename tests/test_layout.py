"""The package's structure: each fact in one place, no private name used across modules, and the
modules of names and decisions import nothing heavy. Static checks over the source (ast), each
shown to catch what it looks for on a small module written here."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from robust_transfer import keys
from tests.conftest import HEAVY_LIBRARIES, ROOT, heavy_imports

PACKAGE = ROOT / "robust_transfer"
SOURCES = sorted(
    [*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
)
NAMES = ("LANGUAGES", "STAGES", "DATA_SPLITS", "CLEAN", "GENERALIZED_SPLIT")
HEAVY = (*HEAVY_LIBRARIES, "wandb", "matplotlib")


def test_the_names_are_the_contract():
    assert keys.LANGUAGES == tuple("en de es fr ja ko zh".split())  # ISO 639-1, English first
    assert keys.STAGES == ("intermediate", "target")
    assert keys.DATA_SPLITS == ("train", "validation", "test")
    assert (keys.CLEAN, keys.GENERALIZED_SPLIT) == ("clean", "generalized")


# ---------------------------------------------------------------- private names across modules


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module a (possibly relative) `from ... import` reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(root: Path, package: str) -> list[str]:
    """`file:line name` for every private name (`_x`) a module of `package` (under `root`) takes
    from another module of the package: `from a import _x`, or `a._x` where `a` was imported."""
    found = []
    for path in sorted((root / package).rglob("*.py")):
        module = _module_name(path, root)
        tree = ast.parse(path.read_text(), str(path))
        imported: set[str] = set()  # local names bound to the package's modules or objects
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(module, node, path.name == "__init__.py")
                if source != package and not source.startswith(f"{package}."):
                    continue
                for alias in node.names:
                    if _private(alias.name):
                        found.append(
                            f"{path.relative_to(root)}:{node.lineno} {source}.{alias.name}"
                        )
                    imported.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package or alias.name.startswith(f"{package}."):
                        imported.add(alias.asname or alias.name.split(".")[0])
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and _private(node.attr)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_name():
    assert private_uses(ROOT, "robust_transfer") == []


def test_the_private_name_check_finds_each_kind_of_use(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("_secret = 1\n__all__ = []\ndef _own(): return _secret\n")
    (pkg / "sub" / "__init__.py").write_text("from ..a import _secret\n")
    (pkg / "sub" / "b.py").write_text(
        "from pkg import a\nimport pkg.a as aa\nfrom pkg.a import __all__\nx = a._secret + aa._own()\n"
    )
    assert private_uses(tmp_path, "pkg") == [
        "pkg/sub/__init__.py:1 pkg.a._secret",
        "pkg/sub/b.py:4 a._secret",
        "pkg/sub/b.py:4 aa._own",
    ]


# ---------------------------------------------------------------- one place for each name


def _code(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    lines = [
        line
        for c in cells
        if c["cell_type"] == "code"
        for line in "".join(c["source"]).splitlines()
    ]
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
                wrong += [
                    f"{path.relative_to(ROOT)}: {a.name} from {node.module}"
                    for a in node.names
                    if a.name in NAMES
                ]
            if isinstance(node, ast.Assign) and path != PACKAGE / "keys.py":
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
                wrong += [f"{path.relative_to(ROOT)}: defines {t}" for t in targets if t in NAMES]
    assert wrong == []


def test_the_checks_find_a_spelled_out_list_and_a_wrong_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('LANGS = ["zh", "en", "de", "es", "fr", "ja", "ko"]\nOTHER = ("en", "de")\n')
    assert spelled_out(module, keys.LANGUAGES) == [1]
    notebook = tmp_path / "n.ipynb"
    source = ["%matplotlib inline\n", 'for s in ("intermediate", "target"):\n', "    pass"]
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}]}))
    assert spelled_out(notebook, keys.STAGES) == [2]


# ---------------------------------------------------------------- light modules


@pytest.mark.parametrize(
    "module",
    [
        "robust_transfer.keys",
        "robust_transfer.wandb_env",
        "robust_transfer.plots",
        "robust_transfer.naming",
    ],
)
def test_module_of_names_and_decisions_imports_nothing_heavy(module):
    assert heavy_imports(f"import {module}", HEAVY) == []
