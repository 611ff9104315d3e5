"""Loggers: CSV always, W&B when asked, falling back to offline mode instead of hanging."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from robust_transfer import keys
from robust_transfer.config import to_container
from robust_transfer.naming import flatten
from robust_transfer.naming import run_info as identify

log = logging.getLogger(__name__)


def _has_api_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(requested: str) -> str:
    """`auto` means WANDB_MODE if set, online with an API key, offline without one."""
    if requested != "auto":
        return requested
    return os.environ.get("WANDB_MODE") or ("online" if _has_api_key() else "offline")


def start_wandb(cfg: DictConfig, out_dir: Path, **run_info):
    """A W&B run, or None when disabled; an online start that fails becomes an offline run.

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


def make_loggers(cfg: DictConfig, out_dir: Path, wandb_run=None) -> list[Logger]:
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(CSVLogger(save_dir=str(out_dir), name="", version=""))
    if wandb_run is not None:
        loggers.append(WandbLogger(experiment=wandb_run))
    return loggers
