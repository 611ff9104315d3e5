"""Loggers: CSV always, W&B when asked, falling back to offline mode instead of hanging.

A resumed run keeps its history: Lightning's CSV writer deletes an existing `metrics.csv` when
it starts, so `RunCSVLogger` appends to it instead (after `trim_metrics` has dropped the rows
the resumed part will log again), and the W&B run continues under the id the run directory
recorded (`wandb.init(id=..., resume="allow")`).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from robust_transfer import keys
from robust_transfer.config import to_container
from robust_transfer.naming import flatten
from robust_transfer.naming import run_info as identify
from robust_transfer.wandb_env import wandb_mode

log = logging.getLogger(__name__)


def start_wandb(cfg: DictConfig, out_dir: Path, **run_info):
    """A W&B run, or None when disabled; an online start that fails becomes an offline run.

    The mode is `wandb_env.wandb_mode(logger.mode)`: `auto` is online with an API key, else offline.

    The run is named, grouped, typed and tagged by `naming.run_info` (seeds of one configuration
    share a group); `run_info` overrides those (its tags are added). The config is the resolved
    config flattened to dotted keys, the names sweeps and filters use.
    """
    import wandb

    mode = wandb_mode(cfg.logger.mode)
    if not cfg.logger.wandb or mode == "disabled":
        return None
    config = to_container(cfg)
    info = identify(config)
    tags = [*info.pop("tags"), *cfg.logger.tags, *run_info.pop("tags", [])]
    kwargs = dict(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        dir=str(out_dir),
        config=flatten(config),
        tags=list(dict.fromkeys(tags)),
        reinit="finish_previous",
        **{**info, **run_info},
    )
    try:
        return wandb.init(
            mode=mode, settings=wandb.Settings(init_timeout=60, silent=True), **kwargs
        )
    except Exception as err:  # network or auth trouble must never stop an experiment
        if mode == "offline":
            raise
        log.warning("W&B online start failed (%s); logging offline to %s instead.", err, out_dir)
        return wandb.init(mode="offline", settings=wandb.Settings(silent=True), **kwargs)


def log_summary(run, results: dict) -> None:
    """results.json's `summary` as W&B summary keys: the runs table's columns."""
    if run is None:
        return
    summary = results["summary"]
    for name in keys.SUMMARY_SCALARS:
        run.summary[keys.summary_key(name)] = summary[name]
    for split, value in summary["degradation_avg"].items():
        run.summary[keys.degradation_avg_key(split)] = value


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, keeping an existing metrics.csv and its columns (Lightning's
    deletes the file when the directory is not empty; a fresh run has none: the pipeline refuses
    a directory holding metrics.csv without resume=true)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys = list(csv.DictReader(f).fieldnames or [])


class RunCSVLogger(CSVLogger):
    """`metrics.csv` in the run directory; a resumed run appends to it."""

    def __init__(self, save_dir: str):
        super().__init__(save_dir=save_dir, name="", version="")

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def trim_metrics(path: Path, keep: Callable[[dict[str, str]], bool]) -> tuple[int, int]:
    """Keep only the rows of `path` (metrics.csv) for which `keep(row)` holds; (kept, dropped)."""
    if not path.is_file():
        return 0, 0
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    kept = [row for row in rows if keep(row)]
    if len(kept) < len(rows):
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(kept)
        os.replace(tmp, path)
    return len(kept), len(rows) - len(kept)


def make_loggers(cfg: DictConfig, out_dir: Path, wandb_run=None) -> list[Logger]:
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(RunCSVLogger(save_dir=str(out_dir)))
    if wandb_run is not None:
        loggers.append(WandbLogger(experiment=wandb_run))
    return loggers
