"""One registry, one build path: every regularizer, text perturbation (combined ones too),
evaluation attack and task, by kind and name, with typed parameters.

    params = spec("regularizer", "pgd", {"epsilon": 0.5})   # validated, torch-free
    reg = build("regularizer", "pgd", {"epsilon": 0.5}, generator=g)  # imports the class now

Importing this package imports no torch, datasets, transformers or Lightning; config
validation calls `spec` and `eval_splits`, the pipeline, evaluation and dashboard `build`.
"""

from robust_transfer.registry import attacks, perturbations, regularizers, tasks  # noqa: F401  (register)
from robust_transfer.registry.core import (
    KINDS,
    CombinedParams,
    Entry,
    build,
    defaults,
    entry,
    names,
    register,
    resolve,
    spec,
    typed,
)
from robust_transfer.registry.splits import CopiesSpec, SplitSpec, copies_spec, eval_splits, seeded

__all__ = [
    "KINDS",
    "CombinedParams",
    "CopiesSpec",
    "Entry",
    "SplitSpec",
    "build",
    "copies_spec",
    "defaults",
    "entry",
    "eval_splits",
    "names",
    "register",
    "resolve",
    "seeded",
    "spec",
    "typed",
]
