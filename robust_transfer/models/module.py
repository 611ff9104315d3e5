"""The LightningModule: any HF encoder + a classification head + a pluggable regularizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy
from transformers import PreTrainedModel, get_linear_schedule_with_warmup

from robust_transfer import keys
from robust_transfer.adversarial import AdversarialBatch, Regularizer, build_regularizer
from robust_transfer.adversarial.base import agree
from robust_transfer.models.head import ClassificationHead

ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert", "xlm-roberta-xl")
NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")


class EvalSplitLike(Protocol):
    """What the module needs of one evaluation dataloader (`evaluation.splits.EvalSplit`): a
    split name (`clean` or a perturbation name), a language, and its logits on a test batch (an
    embedding attack, if any, is the split's business). Evaluation sits above models: this
    module imports nothing of it."""

    name: str
    lang: str

    def logits(self, module: PairClassifier, batch: dict, batch_idx: int) -> torch.Tensor: ...


Summarize = Callable[[dict[str, dict[str, float]], list[dict]], dict[str, dict[str, float]]]


class PairClassifier(pl.LightningModule):
    """Sentence-pair classifier trained with manual optimization.

    Manual optimization lets a regularizer run several backward passes per batch (FreeLB) while
    the module keeps one optimizer step, clipping and scheduling in one place.
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        num_labels: int,
        *,
        stage: str = "target",
        pooling: str = "cls",
        head_dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        gradient_clip_val: float = 1.0,
        regularizer: Regularizer | None = None,
        adversary_start_epoch: int = 0,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.encoder = encoder
        self.head = ClassificationHead(encoder.config.hidden_size, num_labels, head_dropout, pooling)
        self.stage = stage
        self.lr, self.weight_decay, self.warmup_ratio = lr, weight_decay, warmup_ratio
        self.gradient_clip_val = gradient_clip_val
        self.clean = build_regularizer("none", {})
        self.regularizer = regularizer or self.clean
        self.adversary_start_epoch = adversary_start_epoch
        self.val_accuracy = MulticlassAccuracy(num_classes=num_labels, average="micro")
        self.eval_splits: list[EvalSplitLike] = []
        self.summarize: Summarize | None = None
        self.test_accuracy = nn.ModuleList()
        self.skipped_steps = 0
        # SMART's Bregman teacher (an EMA of the weights), built at the first step that needs it;
        # kept out of the module's children so that it is neither trained, synced by DDP, nor saved
        self.__dict__["_teacher"] = None
        self.predictions: list[dict] = []
        self.test_results: dict[str, dict[str, float]] = {}

    # ------------------------------------------------------------------ forward

    def logits(self, batch: dict, inputs_embeds: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = {"attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        if inputs_embeds is None:
            kwargs["input_ids"] = batch["input_ids"]
        else:
            kwargs["inputs_embeds"] = inputs_embeds
            padding_idx = getattr(self.encoder.get_input_embeddings(), "padding_idx", None)
            if getattr(self.encoder.config, "model_type", "") in ROBERTA_LIKE and padding_idx is not None:
                # RoBERTa-style positions skip padding; from embeddings alone they would not
                mask = batch["attention_mask"].long()
                kwargs["position_ids"] = mask.cumsum(1) * mask + padding_idx
        hidden = self.encoder(**kwargs).last_hidden_state
        return self.head(hidden, batch["attention_mask"])

    def adversarial_batch(self, batch: dict, regularizer: Regularizer | None = None) -> AdversarialBatch:
        """The batch as a regularizer sees it: embeddings in, logits out, nothing else (and the
        momentum teacher's logits when `regularizer.wants_teacher`)."""
        embedding = self.encoder.get_input_embeddings()
        teacher = None
        if regularizer is not None and regularizer.wants_teacher:
            model = self._ensure_teacher(regularizer.teacher_decay)
            teacher = lambda: model.module.logits(batch)  # noqa: E731
        return AdversarialBatch(
            embed=lambda: embedding(batch["input_ids"]),
            forward=lambda embeds: self.logits(batch, inputs_embeds=embeds),
            mask=batch["attention_mask"],
            labels=batch["labels"],
            teacher=teacher,
        )

    def _ensure_teacher(self, decay: float) -> torch.optim.swa_utils.AveragedModel:
        """The momentum teacher theta~ <- decay * theta~ + (1 - decay) * theta (SMART's Bregman
        term), torch's AveragedModel with an EMA; it starts as a copy of the current weights and
        runs in eval mode (no dropout: a deterministic target that draws no random numbers).
        It is not checkpointed: a resumed stage restarts it from the resumed weights."""
        if self._teacher is None:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            student = _Logits(self.encoder, self.head)
            teacher = AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
            teacher.update_parameters(student)  # the first update copies: theta~_0 = theta_0; EMA after
            self.__dict__["_teacher"] = teacher.eval().requires_grad_(False)
        return self._teacher

    # ------------------------------------------------------------------ training

    def training_step(self, batch: dict, batch_idx: int) -> None:
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        optimizer.zero_grad()
        # clean epochs first: a tiny model under attack from the start can stay at chance
        regularizer = self.regularizer if self.current_epoch >= self.adversary_start_epoch else self.clean
        out = regularizer.step(self.adversarial_batch(batch, regularizer), self.manual_backward)
        # One decision for all ranks: the regularizer's own checks are already collective (all
        # ranks stop at the same check, after the same backward passes); the flag is agreed once
        # more with the gradients' finiteness, so every rank skips, and counts, the same steps.
        skip = not agree(not out.skipped and self._gradients_finite(), batch["labels"].device)
        if not skip and self.gradient_clip_val > 0:
            self.clip_gradients(optimizer, self.gradient_clip_val, gradient_clip_algorithm="norm")
        if skip:
            self.skipped_steps += 1
            optimizer.zero_grad()
        else:
            optimizer.step()
            scheduler.step()
            if self._teacher is not None and regularizer.wants_teacher:
                self._teacher.update_parameters(_Logits(self.encoder, self.head))
        size = batch["labels"].shape[0]
        log = {"loss": out.loss, "clean_loss": out.clean_loss, "skipped_steps": float(self.skipped_steps)}
        if out.adv_loss is not None:
            log["adv_loss"] = out.adv_loss
        if out.delta_norm is not None:
            log["delta_norm"] = out.delta_norm
        log["lr"] = scheduler.get_last_lr()[0]
        for name, value in log.items():
            self.log(keys.train_key(self.stage, name), value, batch_size=size, prog_bar=name == "loss")

    def _gradients_finite(self) -> bool:
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        return bool(torch.isfinite(torch.stack([g.norm() for g in grads]).sum())) if grads else True

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self.val_accuracy.update(self.logits(batch).argmax(-1), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        self.log(keys.val_accuracy_key(self.stage), self.val_accuracy.compute(), prog_bar=True)
        self.val_accuracy.reset()

    def configure_optimizers(self):
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for n, p in named if not n.endswith(NO_DECAY)], "weight_decay": self.weight_decay},
            {"params": [p for n, p in named if n.endswith(NO_DECAY)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=self.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(self.warmup_ratio * total), total)
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]

    # ------------------------------------------------------------------ evaluation

    def set_eval_splits(self, splits: Sequence[EvalSplitLike], summarize: Summarize | None = None) -> None:
        """The test dataloaders' splits, in loader order; `summarize(accuracy, predictions)` turns
        the per-split accuracies into `test_results` at the end of the test epoch (the evaluation
        package's smoothed vote), before the callbacks' `on_test_end` reads them."""
        self.eval_splits = list(splits)
        self.summarize = summarize
        n = self.head.num_labels
        self.test_accuracy = nn.ModuleList(
            MulticlassAccuracy(num_classes=n, average="micro").to(self.device) for _ in splits
        )

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        split = self.eval_splits[dataloader_idx]
        preds = split.logits(self, batch, batch_idx).argmax(-1)
        self.test_accuracy[dataloader_idx].update(preds, batch["labels"])
        if "id" in batch:
            self.predictions.extend(
                {"split": split.name, "lang": split.lang, "id": int(i), "label": int(y), "prediction": int(p)}
                for i, y, p in zip(batch["id"].tolist(), batch["labels"].tolist(), preds.tolist(), strict=True)
            )

    def on_test_epoch_start(self) -> None:
        self.predictions = []

    def on_test_epoch_end(self) -> None:
        results: dict[str, dict[str, float]] = {}
        for split, metric in zip(self.eval_splits, self.test_accuracy, strict=True):
            value = metric.compute()
            results.setdefault(split.name, {})[split.lang] = float(value)
            self.log(keys.accuracy_key(split.name, split.lang), value)
            metric.reset()
        self.predictions = gather_predictions(self.predictions, self.eval_splits)
        # before the callbacks' on_test_end, so loggers see `smoothed`, not its copies
        self.test_results = results if self.summarize is None else self.summarize(results, self.predictions)


class _Logits(nn.Module):
    """encoder + head as one module with `logits(batch)`: what the Bregman teacher averages."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.head = encoder, head

    def logits(self, batch: dict) -> torch.Tensor:
        kwargs = {"attention_mask": batch["attention_mask"], "input_ids": batch["input_ids"]}
        if "token_type_ids" in batch:
            kwargs["token_type_ids"] = batch["token_type_ids"]
        return self.head(self.encoder(**kwargs).last_hidden_state, batch["attention_mask"])


def gather_predictions(rows: list[dict], splits: Sequence[EvalSplitLike]) -> list[dict]:
    """Prediction rows sorted by split (loader order), then id; under DDP, every rank's rows."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts: list[list[dict] | None] = [None] * dist.get_world_size()
        dist.all_gather_object(parts, rows)
        rows = [r for part in parts for r in part or []]
    order = {(s.name, s.lang): i for i, s in enumerate(splits)}
    return sorted(rows, key=lambda r: (order[(r["split"], r["lang"])], r["id"]))
