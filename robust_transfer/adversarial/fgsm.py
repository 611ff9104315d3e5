"""FGSM / FGM: one gradient step of size epsilon in word-embedding space.

Goodfellow et al. (2015) take the sign of the gradient (`norm: linf`); Miyato et al. (2017,
"FGM") take the gradient normalised per example (`norm: l2`), the usual choice for text.
The direction is the gradient of the clean loss, which the clean backward gives for free,
so a step costs 2 forward+backward passes:

    total = (clean_weight * L(x) + adv_weight * L(x + delta)) / (clean_weight + adv_weight)
    delta = epsilon * g / ||g||_2 (per example)   or   epsilon * sign(g),   g = dL(x)/dx
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    adversarial_finish,
    clean_probe,
    combine_weights,
    direction,
)
from robust_transfer.registry.regularizers import FGSMParams


class FGSM(Regularizer):
    name = "fgsm"
    Params = FGSMParams

    def cost(self) -> Cost:
        if self.params.epsilon == 0:
            return Cost(1, 1, 1)
        wc, _ = combine_weights(self.params.clean_weight, self.params.adv_weight)
        return Cost(2, 2, 1 + (wc > 0))

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        p = self.params
        if p.epsilon == 0:
            return self.clean_step(batch, backward)
        wc, wa = combine_weights(p.clean_weight, p.adv_weight)

        probe = clean_probe(batch, backward, wc)
        if isinstance(probe, StepOutput):
            return probe
        delta = p.epsilon * direction(probe.grad * probe.mask, p.norm) * probe.mask
        return adversarial_finish(batch, delta, probe, wc, wa, backward)
