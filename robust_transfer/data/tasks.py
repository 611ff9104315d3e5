"""Task registry: what a stage trains or evaluates on, as `datasets.Dataset`s of sentence pairs.

Every task yields rows with the same columns, `id`, `sentence1`, `sentence2`, `label`, so the
datamodule and the model never know which task or source they are looking at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datasets import Dataset
from omegaconf import DictConfig

from robust_transfer.data import synthetic

ROLES = ("train", "validation", "test")


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    # (config, role, languages) -> {lang: Dataset}; role is one of ROLES
    load: Callable[[DictConfig, str, list[str]], dict[str, Dataset]]

    @property
    def num_labels(self) -> int:
        return len(self.labels)


def _synthetic_paws(cfg: DictConfig, role: str, languages: list[str]) -> dict[str, Dataset]:
    rows = synthetic.generate_paws(
        _spec(cfg), split=role, seed=cfg.data.seed, languages=tuple(languages)
    )
    return {lang: Dataset.from_list(rows[lang]) for lang in languages}


def _synthetic_nli(cfg: DictConfig, role: str, languages: list[str]) -> dict[str, Dataset]:
    rows = synthetic.generate_nli(_spec(cfg), split=role, seed=cfg.data.seed)
    pairs = [
        {"id": r["id"], "sentence1": r["premise"], "sentence2": r["hypothesis"], "label": r["label"]}
        for r in rows
    ]
    return {"en": Dataset.from_list(pairs)}


def _spec(cfg: DictConfig) -> synthetic.SyntheticPawsSpec:
    from omegaconf import OmegaConf

    return OmegaConf.to_object(cfg.data.synthetic)


INTERMEDIATE_TASKS: dict[str, Task] = {
    "synthetic_nli": Task("synthetic_nli", synthetic.NLI_LABELS, _synthetic_nli),
}
TARGET_TASKS: dict[str, Task] = {
    "synthetic_paws": Task("synthetic_paws", ("not_paraphrase", "paraphrase"), _synthetic_paws),
}


def get_task(name: str) -> Task:
    tasks = {**INTERMEDIATE_TASKS, **TARGET_TASKS}
    return tasks[name]
