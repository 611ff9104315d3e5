"""LightningDataModule for sentence-pair classification: tokenization, batching, sampling."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytorch_lightning as pl
from datasets import Dataset
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

TEXT_COLUMNS = ("sentence1", "sentence2")


def longest_first(indices, lengths: list[int]) -> list[int]:
    """`indices` by decreasing length (stable: equal lengths keep their order)."""
    return sorted(indices, key=lambda i: -lengths[i])


class EpochSampler(Sampler[int]):
    """A shuffle that depends only on (seed, epoch), so a resumed run sees the same order.

    Lightning calls `set_epoch` at the start of every epoch. With `lengths`, indices are
    shuffled, cut into mega-batches of 50 batches, and sorted by length inside each, which
    keeps padding low while the order stays random (as transformers' LengthGroupedSampler).
    `skip` drops the first indices of every iteration of the current epoch, until `set_epoch`
    moves on: a run resumed from a mid-epoch checkpoint (callbacks.interrupt.MidEpochResume) then
    sees exactly the batches an uninterrupted run sees.
    """

    def __init__(self, size: int, seed: int, lengths: list[int] | None = None, batch_size: int = 32):
        self.size, self.seed, self.lengths, self.batch_size = size, seed, lengths, batch_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.skip = 0
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.skip :])

    def _order(self) -> list[int]:
        order = list(range(self.size))
        random.Random(self.seed * 100_003 + self.epoch).shuffle(order)
        if self.lengths is None:
            return order
        mega = self.batch_size * 50
        chunks = [order[i : i + mega] for i in range(0, self.size, mega)]
        return [i for chunk in chunks for i in longest_first(chunk, self.lengths)]


def tokenize(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
    """Tokenize sentence pairs with `datasets.map`; keeps `id` and `labels` beside the model inputs."""

    def encode(batch: dict) -> dict:
        return tokenizer(batch["sentence1"], batch["sentence2"], truncation=True, max_length=max_length)

    drop = [c for c in dataset.column_names if c in TEXT_COLUMNS]
    encoded = dataset.map(encode, batched=True, remove_columns=drop, desc="tokenize")
    return encoded.rename_column("label", "labels")


class PairDataModule(pl.LightningDataModule):
    """Train/validation/test loaders over already-loaded pair datasets.

    `tests` maps an evaluation split name (e.g. `char_noise/ja`) to its dataset; the order of
    `test_names` is the order of `test_dataloader()`'s loaders.
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        *,
        train: Dataset | None = None,
        val: Dataset | None = None,
        tests: dict[str, Dataset] | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 256,
        max_length: int = 64,
        padding: str = "longest",
        group_by_length: bool = False,
        seed: int = 0,
        num_workers: int = 0,
    ):
        super().__init__()
        self.tokenizer = tokenizer
        self.raw = {"train": train, "val": val}
        self.raw_tests = dict(tests or {})
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.max_length, self.group_by_length = max_length, group_by_length
        self.seed, self.num_workers = seed, num_workers
        self.collate = DataCollatorWithPadding(
            tokenizer, padding=padding, max_length=max_length if padding == "max_length" else None
        )
        self.encoded: dict[str, Dataset] = {}

    @property
    def test_names(self) -> list[str]:
        return list(self.raw_tests)

    def setup(self, stage: str | None = None) -> None:
        for name, ds in [*self.raw.items(), *self.raw_tests.items()]:
            if ds is not None and name not in self.encoded:
                self.encoded[name] = tokenize(ds, self.tokenizer, self.max_length)

    def _loader(self, ds: Dataset, batch_size: int, sampler: Sampler | None = None) -> DataLoader:
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            shuffle=False,
            collate_fn=self.collate,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        ds = self.encoded["train"]
        lengths = [len(x) for x in ds["input_ids"]] if self.group_by_length else None
        sampler = EpochSampler(len(ds), self.seed, lengths, self.batch_size)
        return self._loader(ds, self.batch_size, sampler)

    def val_dataloader(self) -> DataLoader | list:
        ds = self.encoded.get("val")
        return [] if ds is None else self._loader(ds, self.eval_batch_size, eval_sampler(ds))

    def test_dataloader(self) -> list[DataLoader]:
        return [
            self._loader(self.encoded[name], self.eval_batch_size, eval_sampler(self.encoded[name]))
            for name in self.test_names
        ]


class LengthSortedSampler(Sampler[int]):
    """Evaluation order, longest first: batches of similar length pad little.

    Metrics and prediction rows (keyed by id) do not depend on the order.
    """

    def __init__(self, lengths: list[int]):
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        return iter(longest_first(range(len(self.lengths)), self.lengths))


def eval_sampler(ds: Dataset) -> Sampler:
    """Length-sorted order; under DDP, each example on exactly one rank, sorted within the rank.

    Lightning's default DistributedSampler pads the last batch by repeating examples, which
    double counts them in evaluation metrics; UnrepeatedDistributedSampler (a DistributedSampler,
    so Lightning keeps it) lets ranks differ by one example instead.
    """
    import torch.distributed as dist

    lengths = [len(x) for x in ds["input_ids"]]
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return LengthSortedSampler(lengths)
    from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

    class SortedUnrepeated(UnrepeatedDistributedSampler):
        def __iter__(self) -> Iterator[int]:
            return iter(longest_first(super().__iter__(), lengths))

    return SortedUnrepeated(ds, shuffle=False)
