"""Every metric key that is logged, in one place: the callbacks that log and the dashboards that
read take their names from here, so a renamed metric cannot silently empty a panel."""

from __future__ import annotations

CLEAN = "clean"


def train_key(stage: str, name: str) -> str:
    """Per-step training scalars: loss, clean_loss, adv_loss, delta_norm, skipped_steps, lr."""
    return f"{stage}/train/{name}"


def val_accuracy_key(stage: str) -> str:
    return f"{stage}/val/accuracy"


def accuracy_key(split: str, lang: str) -> str:
    return f"accuracy/{split}/{lang}"


def degradation_key(split: str, lang: str) -> str:
    return f"degradation/{split}/{lang}"


def relative_degradation_key(split: str, lang: str) -> str:
    return f"relative_degradation/{split}/{lang}"


def summary_key(name: str) -> str:
    return f"summary/{name}"


DEGRADATION_TABLE = "degradation_table"
