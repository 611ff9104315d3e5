"""The tasks a stage can train on, tagged with the stage; their data loaders are in
robust_transfer/data/tasks.py (one `Task` object each, named by the entry's target)."""

from __future__ import annotations

from dataclasses import dataclass

from robust_transfer.keys import STAGES
from robust_transfer.registry.core import register

INTERMEDIATE, TARGET = STAGES  # a task is tagged with the stage it trains at
_AT = "robust_transfer.data.tasks"


@dataclass(frozen=True)
class TaskParams:
    """A task has no parameters of its own: what it reads is set by `data.*` and the stage's splits."""


for _name, _attr, _stage in (
    ("synthetic_nli", "SYNTHETIC_NLI", INTERMEDIATE),
    ("mnli", "MNLI", INTERMEDIATE),
    ("qqp", "QQP", INTERMEDIATE),
    ("xnli_en", "XNLI_EN", INTERMEDIATE),
    ("paws_en", "PAWS_EN", INTERMEDIATE),
    ("nli_tsv", "NLI_TSV", INTERMEDIATE),  # a local premise / hypothesis / label TSV (data.intermediate_path)
    ("synthetic_paws", "SYNTHETIC_PAWS", TARGET),
    ("pawsx", "PAWSX", TARGET),  # PAWS-X from data.source
):
    register("task", _name, f"{_AT}:{_attr}", tags=(_stage,))(TaskParams)
