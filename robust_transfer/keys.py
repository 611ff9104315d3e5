"""The experiment's names, and every metric key that is logged, in one place.

The names: the evaluation languages, the training stages, the data splits and the evaluation
splits. Every metric key is built from them (`accuracy/<split>/<lang>`, `<stage>/train/loss`), so
they live with the keys: the data layer, the config, the pipeline and the callbacks import them
from here, and the callbacks that log and the dashboards that read take their metric names from
here, so a renamed metric cannot silently empty a panel. Nothing here imports anything heavy.

Single keys come from the `*_key` functions; the `*_keys` functions enumerate them for a list of
stages, splits and languages (what `robust_transfer.dashboard` puts on its panels).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# ------------------------------------------------------------------ names

LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")  # PAWS-X's, ISO 639-1; English first
STAGES = ("intermediate", "target")  # the training stages, in the order they run
DATA_SPLITS = ("train", "validation", "test")  # the splits a task or PAWS-X source provides
CLEAN = "clean"  # the unperturbed evaluation split; the others are named after perturbations
GENERALIZED_SPLIT = (
    "generalized"  # mixed-language pairs; reported as a matrix, not as a degradation
)

# ------------------------------------------------------------------ training (LightningModule.log)

LOSS, CLEAN_LOSS, ADV_LOSS, DELTA_NORM, SKIPPED_STEPS, LR = (
    "loss",
    "clean_loss",
    "adv_loss",
    "delta_norm",
    "skipped_steps",
    "lr",
)
TRAIN_SCALARS = (LOSS, CLEAN_LOSS, ADV_LOSS, DELTA_NORM, SKIPPED_STEPS, LR)
GLOBAL_STEP = "trainer/global_step"  # Lightning's WandbLogger step metric (per stage, from 0)


def train_key(stage: str, name: str) -> str:
    """Per-step training scalars: loss, clean_loss, adv_loss, delta_norm, skipped_steps, lr."""
    return f"{stage}/train/{name}"


def val_accuracy_key(stage: str) -> str:
    return f"{stage}/val/accuracy"


# ------------------------------------------------------------------ evaluation (DegradationLogger)


def accuracy_key(split: str, lang: str) -> str:
    return f"accuracy/{split}/{lang}"


def degradation_key(split: str, lang: str) -> str:
    return f"degradation/{split}/{lang}"


def relative_degradation_key(split: str, lang: str) -> str:
    return f"relative_degradation/{split}/{lang}"


def summary_key(name: str) -> str:
    return f"summary/{name}"


# results.json `summary` scalars, logged to the W&B summary by `loggers.log_summary`
SUMMARY_SCALARS = ("clean_avg", "zero_shot_avg", "transfer_gap")


def degradation_avg_key(split: str) -> str:
    """The mean over languages of one perturbation's degradation (results.json summary)."""
    return summary_key(f"degradation_avg/{split}")


DEGRADATION_TABLE = "degradation_table"


def degradation_bar_key(split: str) -> str:
    """A wandb.plot.bar chart of one perturbation's degradation per language."""
    return f"degradation_bar/{split}"


def plot_key(name: str) -> str:
    """A PNG from the run directory's plots/, logged as a wandb.Image."""
    return f"plots/{name}"


ACCURACY_PLOT = plot_key("accuracy")
DEGRADATION_PLOT = plot_key("degradation")
DEGRADATION_HEATMAP_PLOT = plot_key("degradation_heatmap")

# The generalized setting (sentence1 and sentence2 in different languages): a table with
# columns lang1, lang2, accuracy, and its heatmap written as plots/generalized.png.
GENERALIZED_TABLE = "generalized"
GENERALIZED_PLOT = plot_key("generalized")


# ------------------------------------------------------------------ enumerations


def train_keys(stages: Iterable[str], names: Iterable[str] = TRAIN_SCALARS) -> list[str]:
    names = list(names)
    return [train_key(stage, name) for stage in stages for name in names]


def accuracy_keys(split: str, langs: Iterable[str]) -> list[str]:
    return [accuracy_key(split, lang) for lang in langs]


def degradation_keys(split: str, langs: Iterable[str]) -> list[str]:
    return [degradation_key(split, lang) for lang in langs]


def relative_degradation_keys(split: str, langs: Iterable[str]) -> list[str]:
    return [relative_degradation_key(split, lang) for lang in langs]


def summary_keys(splits: Iterable[str]) -> list[str]:
    """Every results-summary key: the scalars, then one degradation mean per perturbed split."""
    return [summary_key(n) for n in SUMMARY_SCALARS] + [
        degradation_avg_key(s) for s in splits if s != CLEAN
    ]


def evaluation_keys(langs_by_split: Mapping[str, Iterable[str]]) -> list[str]:
    """Every scalar the DegradationLogger writes for `{split: [lang, ...]}` (clean included)."""
    out = []
    for split, langs in langs_by_split.items():
        langs = list(langs)
        out += accuracy_keys(split, langs)
        if split != CLEAN:
            out += degradation_keys(split, langs) + relative_degradation_keys(split, langs)
    return out
