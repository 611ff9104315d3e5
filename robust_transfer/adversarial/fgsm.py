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
from dataclasses import dataclass

import torch
from torch import Tensor

from robust_transfer.adversarial.base import (
    NORMS,
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    check_choice,
    check_nonnegative,
    combine_weights,
    direction,
    discard_grads,
    is_finite,
    mask3,
    mean_l2,
    register,
    require_grad,
    task_loss,
)


@register
class FGSM(Regularizer):
    name = "fgsm"

    @dataclass
    class Params:
        epsilon: float = (
            1.0  # perturbation size: per-example L2 norm (l2) or per-entry bound (linf)
        )
        norm: str = "l2"  # l2: FGM (normalised gradient); linf: FGSM (sign of the gradient)
        clean_weight: float = 1.0  # weight of the clean task loss in the normalised mix
        adv_weight: float = 1.0  # weight of the adversarial task loss in the normalised mix

        def __post_init__(self):
            check_nonnegative(epsilon=self.epsilon)
            check_choice("norm", self.norm, NORMS)
            combine_weights(self.clean_weight, self.adv_weight)

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

        embeds = batch.embed()
        mask = mask3(batch, embeds)
        probe = torch.zeros_like(embeds, requires_grad=True)  # a leaf whose gradient is dL/dx
        clean = task_loss(batch.forward(embeds + probe), batch.labels)
        if not is_finite(clean):
            return StepOutput.skip(clean)
        done = []
        if wc > 0:
            backward(clean * wc)
            grad = require_grad(probe)
            done.append(clean)
        else:
            (grad,) = torch.autograd.grad(clean, probe)
        delta = p.epsilon * direction(grad * mask, p.norm) * mask
        if not is_finite(delta):
            discard_grads(done)
            return StepOutput.skip(clean)

        adv = task_loss(batch.forward(batch.embed() + delta), batch.labels)
        if not is_finite(adv):
            discard_grads(done)
            return StepOutput.skip(clean)
        backward(adv * wa)
        total = wc * clean.detach() + wa * adv.detach()
        return StepOutput(total, clean.detach(), adv.detach(), mean_l2(delta))
