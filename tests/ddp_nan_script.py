"""Run by tests/test_ddp.py: 2 gloo processes train a tiny PairClassifier under FreeLB (K=3,
three backward passes per step) while rank 1 alone sees NaN word embeddings twice: at step 1
from its first pass, at step 2 from its second pass (after one backward on both ranks).

    python tests/ddp_nan_script.py OUT_DIR

Each rank writes OUT_DIR/rank{R}.pt: its skipped-step count, optimizer steps and weights.
The process group times out after 60 s, so a rank left waiting fails instead of hanging.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import DDPStrategy
from transformers import BertConfig, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robust_transfer.adversarial import build_regularizer  # noqa: E402
from robust_transfer.models.module import PairClassifier  # noqa: E402

POISON = {1: 1, 2: 2}  # step index -> the embedding lookup (1-based, within the step) that is NaN on rank 1
STEPS, BATCH, T = 4, 4, 10


class PoisonedOnRankOne(PairClassifier):
    """The project's module; rank 1's word embeddings turn NaN at the steps in POISON."""

    def training_step(self, batch, batch_idx):
        self.poison_from = POISON.get(batch_idx) if self.global_rank == 1 else None
        self.lookups = 0
        return super().training_step(batch, batch_idx)


def main(out: Path) -> None:
    pl.seed_everything(0, workers=True)
    torch.set_num_threads(1)
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=T, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    module = PoisonedOnRankOne(
        BertModel(config, add_pooling_layer=False), 2, lr=1e-2, warmup_ratio=0.0,
        regularizer=build_regularizer("freelb", {"steps": 3}),
    )

    def hook(_module, _args, output):
        module.lookups += 1
        if module.poison_from is not None and module.lookups >= module.poison_from:
            return output + float("nan")
        return output

    module.encoder.get_input_embeddings().register_forward_hook(hook)
    g = torch.Generator().manual_seed(1)
    rows = [
        {
            "input_ids": torch.randint(1, 50, (T,), generator=g),
            "attention_mask": torch.ones(T, dtype=torch.long),
            "labels": torch.randint(0, 2, (), generator=g),
        }
        for _ in range(STEPS * BATCH * 2)
    ]
    loader = torch.utils.data.DataLoader(rows, batch_size=BATCH)
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy=DDPStrategy(timeout=timedelta(seconds=60)),
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, use_distributed_sampler=True,
    )
    trainer.fit(module, train_dataloaders=loader)
    torch.save(
        {
            "skipped_steps": module.skipped_steps,
            "optimizer_steps": trainer.global_step,
            "state_dict": {k: v.detach().clone() for k, v in module.state_dict().items()},
        },
        out / f"rank{trainer.global_rank}.pt",
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
