"""Clean training: the task loss, no perturbation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Regularizer,
    StepOutput,
    check_nonnegative,
    register,
)


@register
class NoRegularizer(Regularizer):
    """The baseline: one forward and one backward of the cross-entropy."""

    name = "none"

    @dataclass
    class Params:
        clean_weight: float = (
            1.0  # kept for a uniform schema: the loss is the clean loss whatever its value
        )
        adv_weight: float = 0.0  # unused: there is no adversarial term

        def __post_init__(self):
            check_nonnegative(clean_weight=self.clean_weight, adv_weight=self.adv_weight)

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        return self.clean_step(batch, backward)
