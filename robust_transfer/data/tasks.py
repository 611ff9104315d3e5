"""Tasks: what a stage trains or evaluates on, as `datasets.Dataset`s of sentence pairs.

Each task is one `Task` object below; robust_transfer/registry/tasks.py registers it by name
with the stage it belongs to (so a config is checked without importing `datasets`), and
`get_task` is the registry's `build("task", name)`.

Every task yields rows with the same columns, `id`, `sentence1`, `sentence2`, `label`, so the
datamodule and the model never know which task or source they are looking at. A task reads plain
values: a `DataSource` (the config's `data` group, built by the pipeline), the role, and the split
spec the pipeline chose for it; nothing here reads the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datasets import Dataset

from robust_transfer.data import sources, synthetic
from robust_transfer.registry import build


@dataclass(frozen=True)
class DataSource:
    """Where tasks read their rows: the config's `data` keys of the same names, as plain values."""

    source: str  # synthetic | hub | xtreme | original | auto (sources.load_pawsx)
    path: str | None  # a local PAWS-X copy
    intermediate_path: str | None  # nli_tsv's file
    on_bad_line: str
    seed: int  # the synthetic tasks' generator seed
    synthetic: synthetic.SyntheticPawsSpec


# (data, role, split spec, languages) -> {lang: Dataset}; role is one of keys.DATA_SPLITS (the synthetic
# tasks generate by role), the split spec what the stage's config chose for it (`validation[1500:]`)
Loader = Callable[[DataSource, str, str, list[str]], dict[str, Dataset]]


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    load: Loader

    @property
    def num_labels(self) -> int:
        return len(self.labels)


def _synthetic_paws(data: DataSource, role: str, split: str, languages: list[str]) -> dict[str, Dataset]:
    if data.source != "synthetic":
        raise sources.DataError(
            f"target.task=synthetic_paws is the generated task, but data.source={data.source}: "
            "set target.task=pawsx to read PAWS-X from data.source (or data.source=synthetic)."
        )
    rows = synthetic.generate_paws(data.synthetic, split=role, seed=data.seed, languages=tuple(languages))
    return {lang: Dataset.from_list(rows[lang]) for lang in languages}


def _synthetic_nli(data: DataSource, role: str, split: str, languages: list[str]) -> dict[str, Dataset]:
    rows = synthetic.generate_nli(data.synthetic, split=role, seed=data.seed)
    pairs = [
        {"id": r["id"], "sentence1": r["premise"], "sentence2": r["hypothesis"], "label": r["label"]}
        for r in rows
    ]
    return {"en": Dataset.from_list(pairs)}


def _alias(spec: str, aliases: dict[str, str]) -> str:
    """`validation[:10]` -> `validation_matched[:10]` for hub datasets with other split names."""
    return "+".join(
        aliases.get(sources.split_name(p), sources.split_name(p)) + p.strip()[len(sources.split_name(p)) :]
        for p in spec.split("+")
    )


def _pawsx(data: DataSource, role: str, split: str, languages: list[str]) -> dict[str, Dataset]:
    if data.source == "synthetic":
        return _synthetic_paws(data, role, split, languages)
    return sources.load_pawsx(data.source, split, languages, path=data.path, on_bad_line=data.on_bad_line)


def _hub_intermediate(
    repo: str, config: str | None, labels: tuple[str, ...], columns=("sentence1", "sentence2"), aliases=None
) -> Loader:
    def load(data: DataSource, role: str, split: str, languages: list[str]) -> dict[str, Dataset]:
        spec = _alias(split, aliases or {})
        return {"en": sources.load_hub_pairs(repo, config, spec, columns=columns, labels=labels)}

    return load


def _nli_tsv(data: DataSource, role: str, split: str, languages: list[str]) -> dict[str, Dataset]:
    if not data.intermediate_path:
        raise sources.DataError(
            "intermediate.task=nli_tsv reads a local TSV: set data.intermediate_path=/path/to/file.tsv "
            "(premise, hypothesis, label name per line, e.g. XNLI's dev-en.tsv)."
        )
    ds, _ = sources.read_nli_tsv(data.intermediate_path, NLI_LABELS, spec=split, on_bad_line=data.on_bad_line)
    return {"en": ds}


NLI_LABELS = synthetic.NLI_LABELS  # entailment, neutral, contradiction: GLUE's and XNLI's order
PAWS_LABELS = ("not_paraphrase", "paraphrase")
QQP_LABELS = ("not_duplicate", "duplicate")
_MNLI_SPLITS = {"validation": "validation_matched", "test": "test_matched"}

SYNTHETIC_NLI = Task("synthetic_nli", NLI_LABELS, _synthetic_nli)
MNLI = Task(
    "mnli", NLI_LABELS, _hub_intermediate("nyu-mll/glue", "mnli", NLI_LABELS, ("premise", "hypothesis"), _MNLI_SPLITS)
)
QQP = Task("qqp", QQP_LABELS, _hub_intermediate("nyu-mll/glue", "qqp", QQP_LABELS, ("question1", "question2")))
XNLI_EN = Task("xnli_en", NLI_LABELS, _hub_intermediate("facebook/xnli", "en", NLI_LABELS, ("premise", "hypothesis")))
PAWS_EN = Task("paws_en", PAWS_LABELS, _hub_intermediate(sources.PAWSX_HUB, "en", PAWS_LABELS))
# a local premise / hypothesis / label-name TSV at data.intermediate_path (one split: slices apply)
NLI_TSV = Task("nli_tsv", NLI_LABELS, _nli_tsv)
SYNTHETIC_PAWS = Task("synthetic_paws", PAWS_LABELS, _synthetic_paws)
# PAWS-X from data.source (hub, xtreme, original or auto-detected from data.path)
PAWSX = Task("pawsx", PAWS_LABELS, _pawsx)


def get_task(name: str) -> Task:
    """The registered task `name` (a ValueError names the valid ones)."""
    return build("task", name)
