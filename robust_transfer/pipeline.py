"""The experiment: config -> checks -> stages (intermediate, target) -> evaluation -> run directory.

Reads top to bottom: lock the run directory, then `prepare` everything the run will read or build
(every stage's train and validation data, every evaluation language's test data and perturbed
splits, every regularizer, the encoder and its position limit), so that a mistake fails in
seconds with nothing written that blocks a rerun (GUIDE: "Fail before training"). Then fine-tune
the encoder on the intermediate task (unless `intermediate=none`), then on the target task with
a fresh head, evaluate every language on clean and perturbed splits and write the run directory.

Run-directory bookkeeping (README, "The run directory"): `.lock` (filelock: one fit at a time),
`run.json` (a fingerprint of the config that determines results, and the W&B run id: `resume=true`
refuses a different config and continues the same W&B run), `checkpoints/stages.json` (each
finished stage's record, so a resumed run reports the stages it loaded in full).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from filelock import FileLock, Timeout
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from robust_transfer import keys, registry
from robust_transfer.callbacks import DegradationLogger, RngState
from robust_transfer.callbacks.degradation import log_generalized, log_plots
from robust_transfer.callbacks.interrupt import (
    Interrupted,
    MidEpochResume,
    SaveOnInterrupt,
    Signals,
)
from robust_transfer.config import to_container, to_yaml
from robust_transfer.data.datamodule import PairDataModule
from robust_transfer.data.perturbed import augment_split, low_change_warnings
from robust_transfer.data.sources import DataError
from robust_transfer.data.tasks import DataSource, get_task
from robust_transfer.evaluation.metrics import generalized_matrix, with_smoothed_vote
from robust_transfer.evaluation.splits import build_eval_splits
from robust_transfer.hardware import precision_warnings
from robust_transfer.loggers import log_summary, make_loggers, start_wandb, trim_metrics
from robust_transfer.models.encoder import load_encoder, load_tokenizer, resolve_model_path
from robust_transfer.models.module import PairClassifier
from robust_transfer.naming import comparable_config, flatten
from robust_transfer.report import (
    build_results,
    format_table,
    one_class,
    training_warnings,
    write_json,
    write_plots,
    write_report,
)

log = logging.getLogger("robust_transfer")
STAGE_KEY = "robust_transfer_stage"
RUN_FILE = "run.json"  # fingerprint of the results-determining config, W&B run id
LOCK_FILE = ".lock"
STAGES_FILE = "stages.json"  # under checkpoints/: the record of every finished stage
# files whose presence means the directory holds a run (a rerun needs resume=true)
RUN_MARKERS = (RUN_FILE, "results.json", "metrics.csv")


class RunError(RuntimeError):
    """A problem with the run directory or inputs that the user can fix."""


class _StageTag(pl.Callback):
    """Marks each checkpoint with the stage that wrote it (resume needs to know)."""

    def __init__(self, stage: str):
        self.stage = stage

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[STAGE_KEY] = self.stage


def make_trainer(cfg: DictConfig, stage_cfg: DictConfig | None, loggers, callbacks) -> pl.Trainer:
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


def make_datamodule(cfg: DictConfig, tokenizer, **splits) -> PairDataModule:
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


# ---------------------------------------------------------------- the early checks


@dataclasses.dataclass
class StagePlan:
    """One training stage, its data read and its regularizer built."""

    name: str
    index: int
    task: Any
    train: Any
    val: Any
    regularizer: Any
    info: dict


@dataclasses.dataclass
class Plan:
    """Everything the run reads or builds, made before the first training step."""

    stages: list[StagePlan]
    eval_splits: list
    eval_data: dict
    perturbation_stats: dict
    test_examples: dict[str, int]
    warnings: list[str]
    model_path: str
    tokenizer: Any
    encoder: Any


def data_source(cfg: DictConfig) -> DataSource:
    """The config's `data` group as the plain values tasks read."""
    d = cfg.data
    return DataSource(d.source, d.path, d.intermediate_path, d.on_bad_line, d.seed, OmegaConf.to_object(d.synthetic))


def split_choice(cfg: DictConfig, stage: str, role: str) -> tuple[str, str]:
    """The config key that chose the split of `role` for `stage` (`{stage}.{role}_split`, else
    `data.{role}_split`) and the split spec it holds."""
    key = {"train": "train_split", "validation": "val_split", "test": "test_split"}[role]
    own = cfg[stage].get(key) if stage in cfg else None
    return (f"{stage}.{key}", own) if own is not None else (f"data.{key}", cfg.data[key])


def load_split(cfg: DictConfig, stage: str, role: str, languages: list[str]) -> dict:
    """The stage task's `role` data per language, with the config key of the split in every error,
    and no empty split."""
    task = get_task(cfg[stage].task)
    key, spec = split_choice(cfg, stage, role)
    where = f"{stage} stage, {role} data: {key}={spec}"
    try:
        data = task.load(data_source(cfg), role, spec, languages)
    except DataError as err:
        raise DataError(f"{err} [{where}]") from None
    for lang, ds in data.items():
        if len(ds) == 0:
            raise DataError(
                f"The {role} split of {task.name} selects no rows for '{lang}' [{where}]. Choose a "
                f"split that holds labelled rows ({key}), or check the data source (data.source, data.path)."
            )
    return data


def _prepare_stage(cfg: DictConfig, name: str, index: int) -> StagePlan:
    stage_cfg = cfg[name]
    task = get_task(stage_cfg.task)
    lang = cfg.data.train_language
    train = load_split(cfg, name, "train", [lang])[lang]
    if stage_cfg.augment is not None:
        augment = OmegaConf.to_container(stage_cfg.augment)
        train = augment_split(train, augment, lang, cfg.data.seed, Path(cfg.cache_dir) / "perturbed")
    val = load_split(cfg, name, "validation", [lang])[lang]
    adversary = OmegaConf.to_container(stage_cfg.adversary)
    regularizer = registry.build("regularizer", adversary["name"], adversary)
    info = {
        "name": name,
        "task": task.name,
        "adversary": {"name": regularizer.name, **dataclasses.asdict(regularizer.params)},
        "adversary_start_epoch": stage_cfg.adversary_start_epoch,
        "train_examples": len(train),
        "augment": OmegaConf.to_container(stage_cfg.augment) if stage_cfg.augment is not None else None,
    }
    return StagePlan(name, index, task, train, val, regularizer, info)


def position_limit(encoder) -> int | None:
    """How many tokens the encoder can position: `max_position_embeddings`, less the offset of
    RoBERTa-family models, which number positions from `padding_idx + 1` (XLM-R: 2)."""
    positions = getattr(encoder.config, "max_position_embeddings", None)
    if positions is None:
        return None
    padding_idx = getattr(getattr(encoder, "embeddings", None), "padding_idx", None)
    return positions - (padding_idx + 1 if isinstance(padding_idx, int) else 0)


def _check_languages(cfg: DictConfig) -> list[str]:
    languages = list(cfg.data.languages)
    repeated = sorted(lang for lang, n in Counter(languages).items() if n > 1)
    if repeated:
        raise RunError(
            f"data.languages={languages} lists {', '.join(repeated)} more than once. Each language is "
            f"evaluated once: pass each code once, e.g. data.languages=[{','.join(dict.fromkeys(languages))}]."
        )
    return languages


def _test_warnings(counts: dict[str, int]) -> list[str]:
    """One sentence per language scored on fewer test pairs than the largest language."""
    most = max(counts.values())
    return [
        f"the {lang} test split has {n} labelled pairs, fewer than the {most} of the largest language: "
        f"its accuracy is over fewer pairs (test_examples in results.json)."
        for lang, n in counts.items()
        if n < most
    ]


def prepare(cfg: DictConfig) -> Plan:
    """Read every split and build every object the run uses, exactly as the run uses them."""
    languages = _check_languages(cfg)
    names = [n for n in keys.STAGES if cfg[n].task != "none"]
    stages = [_prepare_stage(cfg, name, index) for index, name in enumerate(names)]
    clean = load_split(cfg, "target", "test", languages)
    counts = {lang: len(ds) for lang, ds in clean.items()}
    warnings = [*precision_warnings(cfg.trainer.precision, cfg.trainer.accelerator), *_test_warnings(counts)]
    for line in warnings:
        log.warning(line)
    splits, data, stats = build_eval_splits(
        clean,
        perturbations=registry.eval_splits(cfg.eval.perturbations, cfg.data.seed),
        seed=cfg.data.seed,
        perturbed_cache=Path(cfg.cache_dir) / "perturbed",
        smoothing=registry.copies_spec("eval.smoothing", cfg.eval.smoothing) if cfg.eval.smoothing is not None else None,
        generalized=cfg.eval.generalized,
    )
    model_path = resolve_model_path(cfg)
    tokenizer, encoder = load_tokenizer(model_path), load_encoder(model_path)
    limit = position_limit(encoder)
    if limit is not None and cfg.model.max_length > limit:
        raise RunError(
            f"model.max_length={cfg.model.max_length} is longer than the {limit} token positions of "
            f"the encoder '{cfg.model.name_or_path}' (max_position_embeddings "
            f"{encoder.config.max_position_embeddings}). Set model.max_length={limit} or less"
            + (" (or raise model.tiny.max_position_embeddings)." if cfg.model.name_or_path == "tiny" else ".")
        )
    return Plan(stages, splits, data, stats, counts, warnings, model_path, tokenizer, encoder)


# ---------------------------------------------------------------- the run directory


def results_config(config: dict) -> dict:
    """What determines a run's results: the resolved config without paths and runtime knobs
    (`naming.comparable_config`), with the seed."""
    return {"seed": config.get("seed"), **comparable_config(config)}


def config_fingerprint(config: dict) -> str:
    blob = json.dumps(results_config(config), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def config_diff(old: dict, new: dict) -> list[str]:
    """`key: old -> new` for every results-determining key that differs."""
    a, b = flatten(results_config(old)), flatten(results_config(new))
    missing = "(unset)"
    return [
        f"{key}: {a.get(key, missing)!r} -> {b.get(key, missing)!r}"
        for key in sorted(set(a) | set(b))
        if a.get(key, missing) != b.get(key, missing)
    ]


def _not_writable(path: Path, err: OSError) -> RunError:
    return RunError(
        f"Cannot write to {path} ({err.strerror or err}): the run directory (output_dir) must be "
        f"writable. Fix its permissions (e.g. chmod -R u+w {path}) or choose another output_dir."
    )


def _lock(out: Path) -> FileLock:
    """Hold `output_dir/.lock` for the whole run; a second fit into the directory is refused."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(out / LOCK_FILE), timeout=0)
        lock.acquire()
    except Timeout:
        raise RunError(
            f"output_dir '{out}' is in use: another fit is writing to it (it holds the lock "
            f"{out / LOCK_FILE}). Wait for that run to end, or choose another output_dir."
        ) from None
    except OSError as err:
        raise _not_writable(Path(err.filename or out), err) from None
    return lock


def _check_writable(cfg: DictConfig, out: Path) -> None:
    """Every directory and file of the run directory the run will write, tried now."""
    dirs = [out, out / "checkpoints", out / "plots", *([out / "wandb"] if cfg.logger.wandb else [])]
    for d in dirs:
        if d.is_dir():
            try:
                with tempfile.TemporaryFile(dir=d):
                    pass
            except OSError as err:
                raise _not_writable(d, err) from None
    for name in ("config.yaml", RUN_FILE, "results.json", "metrics.csv", "report.md", "predictions.csv"):
        path = out / name
        if path.exists() and not os.access(path, os.W_OK):
            raise _not_writable(path, PermissionError(13, "Permission denied"))


def _checkpoint_problem(path: Path) -> str | None:
    """What is wrong with a checkpoint file (torch's zip format, CRC-checked), or None."""
    try:
        if path.stat().st_size == 0:
            return "it is empty"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
        return None if bad is None else f"its member {bad} fails its checksum"
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"it is not a complete checkpoint ({err})"


def _damaged_checkpoint(path: Path, problem: str) -> RunError:
    if path.name == "last.ckpt":
        way_out = (
            "the interrupted stage then trains again from its start, and finished stages are loaded "
            "from their <stage>.ckpt"
        )
    else:
        way_out = f"the {path.stem} stage then trains again (from last.ckpt if that holds the same stage)"
    return RunError(
        f"Cannot resume from {path}: {problem}. Move it aside (mv {path} {path}.damaged) and rerun with "
        f"resume=true: {way_out}. Or start afresh in another output_dir."
    )


def load_checkpoint(path: Path) -> dict:
    """`torch.load` of one of our checkpoints; a damaged file is a RunError with the way out."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # PytorchStreamReader, EOFError, UnpicklingError: all a damaged file
        raise _damaged_checkpoint(path, f"it cannot be read ({type(err).__name__}: {err})") from None


def _check_run_dir(cfg: DictConfig, out: Path) -> dict:
    """Writability, an existing run (resume=true or refuse), the config fingerprint and the
    integrity of the checkpoints a resume would load. Returns the run record to write."""
    _check_writable(cfg, out)
    config = to_container(cfg)
    ckpts = out / "checkpoints"
    has_ckpts = ckpts.is_dir() and any(ckpts.iterdir())
    markers = [name for name in RUN_MARKERS if (out / name).exists()]
    if not cfg.resume:
        if has_ckpts or markers:
            held = ", ".join([*markers, *(["checkpoints/"] if has_ckpts else [])])
            raise RunError(
                f"output_dir '{out}' already holds a run ({held}). Pass resume=true to continue it, "
                "or choose another output_dir."
            )
        return {"fingerprint": config_fingerprint(config), "wandb_id": _new_wandb_id()}
    record, recorded_config = _read_record(out)
    if recorded_config is not None:
        diff = config_diff(recorded_config, config)
        if diff:
            raise RunError(
                f"resume=true, but output_dir '{out}' holds a run of another configuration; these keys "
                f"differ (recorded -> now): {'; '.join(diff)}. Rerun with the recorded values to continue "
                "it, or choose another output_dir for the new configuration."
            )
    for path in sorted(ckpts.glob("*.ckpt")) if ckpts.is_dir() else []:
        problem = _checkpoint_problem(path)
        if problem:
            raise _damaged_checkpoint(path, problem)
    return {
        "fingerprint": config_fingerprint(config),
        "wandb_id": record.get("wandb_id") or _new_wandb_id(),
    }


def _read_record(out: Path) -> tuple[dict, dict | None]:
    """The recorded run (run.json) and the config it ran with (run.json's, else config.yaml)."""
    path = out / RUN_FILE
    record: dict = {}
    if path.exists():
        try:
            record = json.loads(path.read_text())
            return record, record["config"]
        except (ValueError, KeyError, TypeError) as err:
            raise RunError(
                f"{path} is damaged ({type(err).__name__}: {err}), so resume=true cannot check that the "
                f"run's config is unchanged. Restore it, or delete it to resume without the check."
            ) from None
    if (out / "config.yaml").exists():  # a run from before run.json
        return record, to_container(OmegaConf.load(out / "config.yaml"))
    return record, None


def _new_wandb_id() -> str:
    return hashlib.sha1(os.urandom(16)).hexdigest()[:8]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_run_files(cfg: DictConfig, out: Path, record: dict) -> None:
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    _write_atomic(out / "config.yaml", to_yaml(cfg))
    _write_atomic(out / RUN_FILE, json.dumps({**record, "config": to_container(cfg)}, indent=2, default=str) + "\n")


def _stage_records(out: Path) -> dict:
    path = out / "checkpoints" / STAGES_FILE
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        log.warning("%s is damaged; the loaded stages' records will lack their training details", path)
        return {}


def _save_stage_record(out: Path, info: dict) -> None:
    records = _stage_records(out)
    records[info["name"]] = info
    _write_atomic(out / "checkpoints" / STAGES_FILE, json.dumps(records, indent=2, default=str) + "\n")


def _resume_points(out: Path, names: list[str]) -> dict[str, Any]:
    """Per stage, where a resume starts: "done" (its <stage>.ckpt), the global step of a
    last.ckpt it wrote, or None (from scratch)."""
    ckpts = out / "checkpoints"
    points: dict[str, Any] = {n: "done" if (ckpts / f"{n}.ckpt").exists() else None for n in names}
    last = ckpts / "last.ckpt"
    if last.exists():
        state = load_checkpoint(last)
        stage = state.get(STAGE_KEY)
        if points.get(stage, "done") is None:
            points[stage] = int(state.get("global_step", 0))
    return points


def _keep_metric_row(points: dict[str, Any]):
    """Rows of metrics.csv a resumed run keeps: those of loaded stages, and those of the resumed
    stage logged before its checkpoint; evaluation rows go (evaluation runs again)."""

    def keep(row: dict[str, str]) -> bool:
        stage = next((n for n in points if any(k.startswith(f"{n}/") and v != "" for k, v in row.items())), None)
        point = points.get(stage)
        if point == "done":
            return True
        if isinstance(point, int):
            return int(float(row.get("step") or 0)) < point
        return False

    return keep


# ---------------------------------------------------------------- training and evaluation


def train_stage(
    cfg, plan: StagePlan, encoder, tokenizer, loggers, extra_callbacks=(), signals: Signals | None = None
) -> tuple[PairClassifier, dict]:
    """Fine-tune `encoder` with a fresh head on the stage's task; resumable per stage."""
    name, stage_cfg = plan.name, cfg[plan.name]
    # each stage seeds itself, so a stage resumed alone draws what it drew in the full run
    pl.seed_everything(cfg.seed + plan.index, workers=True, verbose=False)
    if cfg.model.freeze_embeddings:
        encoder.get_input_embeddings().weight.requires_grad_(False)
    module = PairClassifier(
        encoder,
        plan.task.num_labels,
        stage=name,
        pooling=cfg.model.pooling,
        head_dropout=cfg.model.head_dropout,
        lr=stage_cfg.lr,
        weight_decay=stage_cfg.weight_decay,
        warmup_ratio=stage_cfg.warmup_ratio,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
        regularizer=plan.regularizer,
        adversary_start_epoch=stage_cfg.adversary_start_epoch,
    )
    out = Path(cfg.output_dir)
    ckpt_dir = out / "checkpoints"
    final = ckpt_dir / f"{name}.ckpt"
    info = dict(plan.info)
    if cfg.resume and final.exists():
        state = load_checkpoint(final)
        module.load_state_dict(state["state_dict"])
        log.info("stage %s already finished: loaded %s", name, final)
        recorded = _stage_records(out).get(name) or {"steps": int(state["global_step"]), "skipped_steps": None}
        return module, {**info, **recorded}

    last = ckpt_dir / "last.ckpt"
    ckpt_path = None
    if cfg.resume and last.exists():
        if load_checkpoint(last).get(STAGE_KEY) == name:
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
        MidEpochResume(),
        _StageTag(name),
        *([SaveOnInterrupt(signals, last)] if signals is not None else []),
        *extra_callbacks,
    ]
    trainer = make_trainer(cfg, stage_cfg, loggers, callbacks)
    module.train()  # from_pretrained returns the encoder in eval mode: dropout would stay off
    started = time.perf_counter()
    datamodule = make_datamodule(cfg, tokenizer, train=plan.train, val=plan.val)
    _guarded(signals, f"stage {name}", last, trainer.fit, module, datamodule=datamodule, ckpt_path=ckpt_path)
    info.update(
        steps=int(trainer.global_step),
        skipped_steps=module.skipped_steps,
        seconds=round(time.perf_counter() - started, 1),
        val_accuracy=_metric(trainer, keys.val_accuracy_key(name)),
    )
    if stage_cfg.select_best:
        info.update(_load_best(module, best))
    trainer.save_checkpoint(final, weights_only=True)
    if _is_global_zero():
        _save_stage_record(out, info)
    return module, info


def _guarded(signals: Signals | None, where: str, checkpoint: Path | None, fn, *args, **kwargs):
    """Run a Trainer entry point; a signal during it becomes `Interrupted` (Lightning's own
    SIGTERMException is a SystemExit without a code: the process would exit 0)."""
    try:
        return fn(*args, **kwargs)
    except SIGTERMException:
        if signals is None or signals.signum is None:
            raise
        raise Interrupted(signals.signum, where, checkpoint) from None
    finally:
        if signals is not None:
            signals.trainer = None


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


def evaluate(cfg, module: PairClassifier, tokenizer, loggers, plan: Plan, signals: Signals | None = None) -> dict:
    """Accuracy per split and language on the splits `prepare` built."""
    module.set_eval_splits(plan.eval_splits, summarize=with_smoothed_vote)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    callbacks = [DegradationLogger(), *([SaveOnInterrupt(signals, None)] if signals is not None else [])]
    trainer = make_trainer(cfg, None, loggers, callbacks)
    datamodule = make_datamodule(cfg, tokenizer, tests=plan.eval_data)
    _guarded(signals, "evaluation", None, trainer.test, module, datamodule=datamodule, verbose=False)
    return module.test_results


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

    `callbacks` are added to every training stage's Trainer. SIGTERM / SIGINT raise
    `Interrupted` after saving a resumable checkpoint (see callbacks/interrupt.py).
    """
    with Signals() as signals:
        return _run(cfg, callbacks, signals)


def _run(cfg: DictConfig, callbacks: tuple[pl.Callback, ...], signals: Signals) -> dict:
    out = Path(cfg.output_dir)
    # under DDP every rank runs this function; only global rank 0 locks, logs to W&B and writes files
    zero = _is_global_zero()
    lock = _lock(out) if zero else None
    wandb_run, loggers = None, []
    try:
        record = _check_run_dir(cfg, out) if zero else {}
        if cfg.trainer.num_threads:
            torch.set_num_threads(cfg.trainer.num_threads)
        started = time.perf_counter()
        plan = prepare(cfg)
        log.info(
            "checked in %.1fs: %d training stage(s), %d evaluation splits, the encoder",
            time.perf_counter() - started, len(plan.stages), len(plan.eval_data),
        )
        names = [s.name for s in plan.stages]
        if zero:
            points = _resume_points(out, names) if cfg.resume else {}
            _write_run_files(cfg, out, record)
            if cfg.resume:
                kept, dropped = trim_metrics(out / "metrics.csv", _keep_metric_row(points))
                log.info("resume: kept %d rows of metrics.csv, dropped %d that will be logged again", kept, dropped)
            # name, group, job_type, tags: naming.run_info; the id continues the run on resume
            wandb_run = start_wandb(cfg, out, id=record["wandb_id"], resume="allow")
        loggers = make_loggers(cfg, out, wandb_run)

        stages = []
        encoder = plan.encoder
        for stage in plan.stages:
            module, info = train_stage(cfg, stage, encoder, plan.tokenizer, loggers, callbacks, signals)
            encoder = module.encoder
            stages.append(info)
        accuracy = evaluate(cfg, module, plan.tokenizer, loggers, plan, signals)
        generalized = generalized_matrix(accuracy)

        results = build_results(
            accuracy,
            stages=stages,
            config=to_container(cfg),
            train_language=cfg.data.train_language,
            perturbation_stats=plan.perturbation_stats,
            test_examples=plan.test_examples,
            warnings=[
                *plan.warnings,
                *low_change_warnings(plan.perturbation_stats),
                *training_warnings(stages, module.predictions),
            ],
            one_class=one_class(module.predictions),
            **({"generalized": generalized} if generalized else {}),
        )
        if not zero:
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
    except Interrupted as stop:
        for logger in loggers:
            logger.finalize("failed")  # metrics.csv keeps every row logged so far
        if wandb_run is not None:
            wandb_run.finish(exit_code=stop.exit_code)
        if stop.checkpoint is not None and not Path(stop.checkpoint).exists():
            stop.checkpoint = None
        raise
    finally:
        if lock is not None:
            lock.release()
