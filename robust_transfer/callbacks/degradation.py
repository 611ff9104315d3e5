"""Log per-language clean / perturbed / degradation to every logger after evaluation."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from robust_transfer import keys
from robust_transfer.evaluation.metrics import degradation, degradation_rows, relative_degradation


def log_plots(run, paths) -> None:
    """The run directory's PNG plots (bars, heatmaps) as W&B images."""
    import wandb

    run.log({keys.plot_key(p.stem): wandb.Image(str(p)) for p in paths})


def log_generalized(run, matrix: dict[str, dict[str, float]]) -> None:
    """The generalized-setting matrix as a W&B table (lang1, lang2, accuracy)."""
    import wandb

    rows = [[a, b, acc] for a, row in matrix.items() for b, acc in row.items()]
    run.log({keys.GENERALIZED_TABLE: wandb.Table(columns=["lang1", "lang2", "accuracy"], data=rows)})


def summary_values(accuracy: dict[str, dict[str, float]]) -> dict[str, float]:
    """The W&B summary the logger writes: `accuracy/<split>/<lang>` for every split but the
    generalized pairs, then `degradation/...` and `relative_degradation/...` for every perturbed
    split and language, from `evaluation.metrics` (the functions results.json is written with)."""
    degraded = degradation(accuracy)
    relative = relative_degradation(accuracy, degraded)
    values = {
        keys.accuracy_key(split, lang): acc
        for split, by_lang in accuracy.items()
        if split != keys.GENERALIZED_SPLIT
        for lang, acc in by_lang.items()
    }
    for split, by_lang in degraded.items():
        for lang, deg in by_lang.items():
            values[keys.degradation_key(split, lang)] = deg
            values[keys.relative_degradation_key(split, lang)] = relative[split][lang]
    return values


class DegradationLogger(pl.Callback):
    """A `wandb.Table` of the degradation study, plus `degradation/<split>/<lang>` summary keys."""

    COLUMNS = ["lang", "split", "clean", "perturbed", "degradation"]

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        accuracy = pl_module.test_results
        if keys.CLEAN not in accuracy:
            return
        rows = degradation_rows(accuracy)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                self._to_wandb(logger.experiment, accuracy, rows)

    def _to_wandb(self, run, accuracy: dict, rows: list[list]) -> None:
        import wandb

        run.log({keys.DEGRADATION_TABLE: wandb.Table(columns=self.COLUMNS, data=rows)})
        for split in dict.fromkeys(row[1] for row in rows):
            table = wandb.Table(columns=["lang", "degradation"], data=[[r[0], r[4]] for r in rows if r[1] == split])
            chart = wandb.plot.bar(table, "lang", "degradation", title=f"degradation under {split}")
            run.log({keys.degradation_bar_key(split): chart})
        for key, value in summary_values(accuracy).items():
            run.summary[key] = value
