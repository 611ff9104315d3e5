"""Loggers: CSV always, W&B when asked, falling back to offline mode instead of hanging."""

from __future__ import annotations

import logging
import netrc
import os
from pathlib import Path

from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from robust_transfer.config import to_container

log = logging.getLogger(__name__)


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested config -> dotted keys, the form W&B sweeps and filters address."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


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
    """A W&B run, or None when disabled; an online start that fails becomes an offline run."""
    import wandb

    mode = wandb_mode(cfg.logger.mode)
    if not cfg.logger.wandb or mode == "disabled":
        return None
    kwargs = dict(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        dir=str(out_dir),
        config=flatten(to_container(cfg)),
        tags=list(cfg.logger.tags) + list(run_info.pop("tags", [])),
        reinit="finish_previous",
        **run_info,
    )
    try:
        return wandb.init(mode=mode, settings=wandb.Settings(init_timeout=60, silent=True), **kwargs)
    except Exception as err:  # network or auth trouble must never stop an experiment
        if mode == "offline":
            raise
        log.warning("W&B online start failed (%s); logging offline to %s instead.", err, out_dir)
        return wandb.init(mode="offline", settings=wandb.Settings(silent=True), **kwargs)


def make_loggers(cfg: DictConfig, out_dir: Path, wandb_run=None) -> list[Logger]:
    loggers: list[Logger] = []
    if cfg.logger.csv:
        loggers.append(CSVLogger(save_dir=str(out_dir), name="", version=""))
    if wandb_run is not None:
        loggers.append(WandbLogger(experiment=wandb_run))
    return loggers
