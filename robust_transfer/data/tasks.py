"""Tasks: what a stage trains or evaluates on, as `datasets.Dataset`s of sentence pairs.

Each task is one `Task` object below; robust_transfer/registry/tasks.py registers it by name
with the stage it belongs to (so a config is checked without importing `datasets`), and
`get_task` is the registry's `build("task", name)`.

Every task yields rows with the same columns, `id`, `sentence1`, `sentence2`, `label`, so the
datamodule and the model never know which task or source they are looking at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datasets import Dataset
from omegaconf import DictConfig

from robust_transfer.data import sources, synthetic
from robust_transfer.registry import build


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    # (config, role, languages) -> {lang: Dataset}; role is one of keys.DATA_SPLITS
    load: Callable[[DictConfig, str, list[str]], dict[str, Dataset]]

    @property
    def num_labels(self) -> int:
        return len(self.labels)


def _synthetic_paws(cfg: DictConfig, role: str, languages: list[str]) -> dict[str, Dataset]:
    if cfg.data.source != "synthetic":
        raise sources.DataError(
            f"target.task=synthetic_paws is the generated task, but data.source={cfg.data.source}: "
            "set target.task=pawsx to read PAWS-X from data.source (or data.source=synthetic)."
        )
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


def split_for(cfg: DictConfig, stage: str, role: str) -> str:
    """The split spec of `role` for a stage: `{stage}.{role}_split`, else `data.{role}_split`."""
    key = {"train": "train_split", "validation": "val_split", "test": "test_split"}[role]
    own = cfg[stage].get(key) if stage in cfg else None
    return own if own is not None else cfg.data[key]


def _alias(spec: str, aliases: dict[str, str]) -> str:
    """`validation[:10]` -> `validation_matched[:10]` for hub datasets with other split names."""
    return "+".join(
        aliases.get(sources.split_name(p), sources.split_name(p)) + p.strip()[len(sources.split_name(p)) :]
        for p in spec.split("+")
    )


def _pawsx(cfg: DictConfig, role: str, languages: list[str]) -> dict[str, Dataset]:
    d = cfg.data
    if d.source == "synthetic":
        return _synthetic_paws(cfg, role, languages)
    return sources.load_pawsx(
        d.source, split_for(cfg, "target", role), languages, path=d.path, on_bad_line=d.on_bad_line
    )


def _hub_intermediate(
    repo: str, config: str | None, labels: tuple[str, ...], columns=("sentence1", "sentence2"), aliases=None
) -> Callable[[DictConfig, str, list[str]], dict[str, Dataset]]:
    def load(cfg: DictConfig, role: str, languages: list[str]) -> dict[str, Dataset]:
        spec = _alias(split_for(cfg, "intermediate", role), aliases or {})
        return {"en": sources.load_hub_pairs(repo, config, spec, columns=columns, labels=labels)}

    return load


def _nli_tsv(cfg: DictConfig, role: str, languages: list[str]) -> dict[str, Dataset]:
    path = cfg.data.intermediate_path
    if not path:
        raise sources.DataError(
            "intermediate.task=nli_tsv reads a local TSV: set data.intermediate_path=/path/to/file.tsv "
            "(premise, hypothesis, label name per line, e.g. XNLI's dev-en.tsv)."
        )
    spec = split_for(cfg, "intermediate", role)
    ds, _ = sources.read_nli_tsv(path, NLI_LABELS, spec=spec, on_bad_line=cfg.data.on_bad_line)
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
