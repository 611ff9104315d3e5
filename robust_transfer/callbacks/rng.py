"""Keep the random number generators in checkpoints, so a resumed run draws the same numbers."""

from __future__ import annotations

import logging

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.seed import _collect_rng_states, _set_rng_states

log = logging.getLogger(__name__)


class RngState(pl.Callback):
    """Lightning restores weights, optimizer and loops, not the RNGs that regularizers draw from.

    The states are Lightning's own collection (`_collect_rng_states`, what `isolate_rng` and the
    spawn launcher use): torch's CPU generator, every CUDA device's generator (`"torch.cuda"`, a
    list, empty without CUDA), numpy's and Python's. Regularizers draw their noise on the batch's
    device, so a GPU run needs the CUDA generators to resume bit for bit.

    States are stored as tensors and plain Python values so that checkpoints still load with
    `torch.load(weights_only=True)` (Lightning's resume does): numpy's state tuple holds an
    array, stored as a tensor. Checkpoints written before the CUDA states were saved (keys
    `torch`, `python`, `numpy` only) load as before and leave the CUDA generators as they are.
    """

    def state_dict(self) -> dict:
        states = _collect_rng_states(include_cuda=True)
        kind, keys, pos, has_gauss, cached = states["numpy"]
        states["numpy"] = [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
        return states

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        kind, keys, pos, has_gauss, cached = state["numpy"]
        state["numpy"] = (kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
        cuda = state.pop("torch.cuda", None)
        _set_rng_states(state)
        if cuda:
            self._set_cuda_states(cuda)

    @staticmethod
    def _set_cuda_states(states: list[torch.Tensor]) -> None:
        """One state per device, as `torch.cuda.set_rng_state_all`, for the devices this process
        has: a checkpoint from a machine with more (or any) GPUs still resumes, with a warning."""
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available < len(states):
            log.warning("the checkpoint holds the random state of %d CUDA device(s), this machine has %d: "
                        "the others' draws will differ from an uninterrupted run", len(states), available)
        for device, device_state in enumerate(states[:available]):
            torch.cuda.set_rng_state(device_state, device)
