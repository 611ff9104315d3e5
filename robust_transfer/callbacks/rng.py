"""Keep the random number generators in checkpoints, so a resumed run draws the same numbers."""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch


class RngState(pl.Callback):
    """Lightning restores weights, optimizer and loops, not the RNGs that regularizers draw from."""

    def state_dict(self) -> dict:
        return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
