"""Keep the random number generators in checkpoints, so a resumed run draws the same numbers."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


class RngState(pl.Callback):
    """Lightning restores weights, optimizer and loops, not the RNGs that regularizers draw from.

    States are stored as tensors and plain Python values so that checkpoints still load with
    `torch.load(weights_only=True)`.
    """

    def state_dict(self) -> dict:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        }

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
