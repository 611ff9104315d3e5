"""Clean training: the task loss, no perturbation."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Regularizer,
    StepOutput,
)
from robust_transfer.registry.regularizers import NoneParams


class NoRegularizer(Regularizer):
    """The baseline: one forward and one backward of the cross-entropy."""

    name = "none"
    Params = NoneParams

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        return self.clean_step(batch, backward)
