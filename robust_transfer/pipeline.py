"""The experiment: config -> stages (intermediate, target) -> evaluation -> run directory.

Reads top to bottom: build the encoder, fine-tune it on the intermediate task
(unless `intermediate=none`), then on the target task with a fresh head, then evaluate every
language on clean and perturbed splits and write the run directory.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from robust_transfer import keys
from robust_transfer.adversarial import build_regularizer
from robust_transfer.callbacks import DegradationLogger, RngState
from robust_transfer.callbacks.degradation import log_generalized, log_plots
from robust_transfer.config import to_container, to_yaml
from robust_transfer.data.datamodule import PairDataModule
from robust_transfer.data.perturbed import augment_split, low_change_warnings
from robust_transfer.data.tasks import get_task
from robust_transfer.evaluation import build_eval_splits, generalized_matrix
from robust_transfer.loggers import log_summary, make_loggers, start_wandb
from robust_transfer.models.encoder import load_encoder, load_tokenizer, resolve_model_path
from robust_transfer.models.module import PairClassifier
from robust_transfer.report import (
    build_results,
    format_table,
    training_warnings,
    write_json,
    write_plots,
    write_report,
)

log = logging.getLogger("robust_transfer")
STAGE_KEY = "robust_transfer_stage"


class RunError(RuntimeError):
    """A problem with the run directory or inputs that the user can fix."""


class _StageTag(pl.Callback):
    """Marks each checkpoint with the stage that wrote it (resume needs to know)."""

    def __init__(self, stage: str):
        self.stage = stage

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[STAGE_KEY] = self.stage


def _trainer(cfg: DictConfig, stage_cfg: DictConfig | None, loggers, callbacks) -> pl.Trainer:
    t = cfg.trainer
    max_epochs = (stage_cfg.max_epochs if stage_cfg is not None else None) or t.max_epochs
    return pl.Trainer(
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=t.num_nodes,
        precision=t.precision,
        max_epochs=max_epochs,
        max_steps=stage_cfg.max_steps if stage_cfg is not None else -1,
        logger=loggers or False,
        callbacks=callbacks,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.enable_progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=True,
        inference_mode=False,  # embedding attacks need gradients at test time
        default_root_dir=cfg.output_dir,
    )


def _datamodule(cfg: DictConfig, tokenizer, **splits) -> PairDataModule:
    d = cfg.data
    return PairDataModule(
        tokenizer,
        batch_size=d.batch_size,
        eval_batch_size=d.eval_batch_size,
        max_length=cfg.model.max_length,
        padding=d.padding,
        group_by_length=d.group_by_length,
        seed=cfg.seed,
        num_workers=d.num_workers,
        **splits,
    )


def train_stage(
    cfg, name: str, index: int, encoder, tokenizer, loggers, extra_callbacks=()
) -> tuple[PairClassifier, dict]:
    """Fine-tune `encoder` with a fresh head on the stage's task; resumable per stage."""
    stage_cfg = cfg[name]
    task = get_task(stage_cfg.task)
    lang = cfg.data.train_language
    train = task.load(cfg, "train", [lang])[lang]
    if stage_cfg.augment is not None:
        augment = OmegaConf.to_container(stage_cfg.augment)
        train = augment_split(train, augment, lang, cfg.data.seed, Path(cfg.cache_dir) / "perturbed")
    val = task.load(cfg, "validation", [lang])[lang]
    adversary = OmegaConf.to_container(stage_cfg.adversary)
    regularizer = build_regularizer(adversary["name"], {k: v for k, v in adversary.items() if k != "name"})
    # each stage seeds itself, so a stage resumed alone draws what it drew in the full run
    pl.seed_everything(cfg.seed + index, workers=True, verbose=False)
    if cfg.model.freeze_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    module = PairClassifier(
        encoder,
        task.num_labels,
        stage=name,
        pooling=cfg.model.pooling,
        head_dropout=cfg.model.head_dropout,
        lr=stage_cfg.lr,
        weight_decay=stage_cfg.weight_decay,
        warmup_ratio=stage_cfg.warmup_ratio,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        regularizer=regularizer,
        adversary_start_epoch=stage_cfg.adversary_start_epoch,
    )
    ckpt_dir = Path(cfg.output_dir) / "checkpoints"
    final = ckpt_dir / f"{name}.ckpt"
    info = {
        "name": name,
        "task": task.name,
        "adversary": {"name": regularizer.name, **dataclasses.asdict(regularizer.params)},
        "adversary_start_epoch": stage_cfg.adversary_start_epoch,
        "train_examples": len(train),
        "augment": OmegaConf.to_container(stage_cfg.augment) if stage_cfg.augment is not None else None,
    }
    if cfg.resume and final.exists():
        state = torch.load(final, map_location="cpu", weights_only=False)
        module.load_state_dict(state["state_dict"])
        log.info("stage %s already finished: loaded %s", name, final)
        return module, {**info, "steps": int(state["global_step"]), "skipped_steps": None}

    last = ckpt_dir / "last.ckpt"
    ckpt_path = None
    if cfg.resume and last.exists():
        if torch.load(last, map_location="cpu", weights_only=False).get(STAGE_KEY) == name:
            ckpt_path = str(last)
            log.info("resuming stage %s from %s", name, last)
    # the best epoch's weights, when selecting; its state (best score, path) resumes with last.ckpt
    best = pl.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, filename=f"{name}-best", monitor=keys.val_accuracy_key(name), mode="max",
        save_top_k=1, save_weights_only=True, enable_version_counter=False,
    )
    callbacks = [
        # one last.ckpt for the whole run, overwritten by whichever stage is training
        pl.callbacks.ModelCheckpoint(
            dirpath=ckpt_dir, filename="last", save_top_k=1, every_n_epochs=1, enable_version_counter=False
        ),
        *([best] if stage_cfg.select_best else []),
        RngState(),
        _StageTag(name),
        *extra_callbacks,
    ]
    trainer = _trainer(cfg, stage_cfg, loggers, callbacks)
    module.train()  # from_pretrained returns the encoder in eval mode: dropout would stay off
    started = time.perf_counter()
    trainer.fit(module, datamodule=_datamodule(cfg, tokenizer, train=train, val=val), ckpt_path=ckpt_path)
    info.update(
        steps=int(trainer.global_step),
        skipped_steps=module.skipped_steps,
        seconds=round(time.perf_counter() - started, 1),
        val_accuracy=_metric(trainer, keys.val_accuracy_key(name)),
    )
    if stage_cfg.select_best:
        info.update(_load_best(module, best))
    trainer.save_checkpoint(final, weights_only=True)
    return module, info


def _load_best(module: PairClassifier, best: pl.callbacks.ModelCheckpoint) -> dict:
    """Load the best validation epoch's weights into `module`; what was selected, for results.json."""
    if not best.best_model_path:
        raise RunError(
            f"{module.stage}.select_best=true, but the stage ran no validation: give it a validation "
            f"split ({module.stage}.val_split or data.val_split) and whole epochs, or set select_best=false."
        )
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    log.info("model selection: epoch %d (validation accuracy %.4f)", state["epoch"], float(best.best_model_score))
    return {"selected_epoch": int(state["epoch"]), "selected_val_accuracy": float(best.best_model_score)}


def _metric(trainer: pl.Trainer, key: str) -> float | None:
    value = trainer.callback_metrics.get(key)
    return None if value is None else float(value)


def evaluate(cfg, module: PairClassifier, tokenizer, loggers) -> tuple[dict, dict]:
    """Accuracy per split and language, and how much each text perturbation changed the data."""
    task = get_task(cfg.target.task)
    clean = task.load(cfg, "test", list(cfg.data.languages))
    splits, data, stats = build_eval_splits(cfg, clean)
    module.set_eval_splits(splits)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = _trainer(cfg, None, loggers, [DegradationLogger()])
    trainer.test(module, datamodule=_datamodule(cfg, tokenizer, tests=data), verbose=False)
    return module.test_results, stats


def _prepare_output(cfg: DictConfig) -> Path:
    out = Path(cfg.output_dir)
    if not cfg.resume and (out / "checkpoints").exists() and any((out / "checkpoints").iterdir()):
        raise RunError(
            f"output_dir '{out}' already holds a run. Pass resume=true to continue it, or choose "
            "another output_dir."
        )
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(to_yaml(cfg))
    return out


def _is_global_zero() -> bool:
    """Global rank 0. Before a Trainer has set the global rank, Lightning's rank comes from the
    launcher's RANK / LOCAL_RANK / SLURM_PROCID, so NODE_RANK tells the other nodes' local rank 0."""
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def _write_predictions(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["split", "lang", "id", "label", "prediction"])
        writer.writeheader()
        writer.writerows(rows)


def run(cfg: DictConfig, callbacks: tuple[pl.Callback, ...] = ()) -> dict:
    """Run every stage of the experiment described by `cfg`; returns results.json's content.

    `callbacks` are added to every training stage's Trainer.
    """
    out = _prepare_output(cfg)
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    model_path = resolve_model_path(cfg)
    tokenizer, encoder = load_tokenizer(model_path), load_encoder(model_path)
    # under DDP every rank runs this function; only global rank 0 logs to W&B and writes files
    wandb_run = start_wandb(cfg, out) if _is_global_zero() else None  # name, group, job_type, tags: naming.run_info
    loggers = make_loggers(cfg, out, wandb_run)

    stages = []
    names = [n for n in ("intermediate", "target") if cfg[n].task != "none"]
    for index, name in enumerate(names):
        module, info = train_stage(cfg, name, index, encoder, tokenizer, loggers, callbacks)
        encoder = module.encoder
        stages.append(info)
    accuracy, perturbation_stats = evaluate(cfg, module, tokenizer, loggers)
    generalized = generalized_matrix(accuracy)

    results = build_results(
        accuracy,
        stages=stages,
        config=to_container(cfg),
        train_language=cfg.data.train_language,
        perturbation_stats=perturbation_stats,
        warnings=low_change_warnings(perturbation_stats) + training_warnings(stages, module.predictions),
        **({"generalized": generalized} if generalized else {}),
    )
    if not _is_global_zero():
        return results
    for warning in results["warnings"]:
        log.warning(warning)
    write_json(out / "results.json", results)
    if cfg.eval.save_predictions:
        _write_predictions(out / "predictions.csv", module.predictions)
    plots = write_plots(out / "plots", results)
    write_report(out / "report.md", results, plots)
    for logger in loggers:
        logger.finalize("success")
    if wandb_run is not None:
        log_summary(wandb_run, results)
        if generalized:
            log_generalized(wandb_run, generalized)
        log_plots(wandb_run, plots)
        wandb_run.finish()
    print(f"\n{format_table(results)}\n\nRun directory: {out}")
    return results
