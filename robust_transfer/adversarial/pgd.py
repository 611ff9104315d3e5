"""PGD adversarial training in word-embedding space (Madry et al., 2018).

Random start inside the ball, K ascent steps of size alpha along the normalised gradient
(per-example L2) or its sign (Linf), each followed by projection onto the ball of radius
epsilon; the parameters are trained on a mix of the clean and the final adversarial loss:

    total = (clean_weight * L(x) + adv_weight * L(x + delta_K)) / (clean_weight + adv_weight)

Cost: K+1 forward passes. The first ascent direction is the clean gradient, which the clean
backward gives for free (as in FGSM and "free" AT), applied at the random start; steps 2..K
differentiate wrt the perturbation only (`torch.autograd.grad`, no weight gradients); the
final adversarial pass is a full forward+backward.
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
    adversarial_finish,
    check_choice,
    check_nonnegative,
    check_steps,
    clean_probe,
    combine_weights,
    direction,
    is_finite,
    project,
    random_in_ball,
    register,
    task_loss,
)


@register
class PGD(Regularizer):
    name = "pgd"

    @dataclass
    class Params:
        epsilon: float = (
            1.0  # radius of the ball: per-example L2 norm (l2) or per-entry bound (linf)
        )
        alpha: float = 0.3  # ascent step size (same units as epsilon)
        steps: int = 3  # number of ascent steps K; 0 trains clean
        norm: str = "l2"  # l2 (per example over real tokens) or linf (elementwise)
        random_init: bool = True  # start uniformly inside the ball (else at zero)
        clean_weight: float = 1.0  # weight of the clean task loss in the normalised mix
        adv_weight: float = 1.0  # weight of the adversarial task loss in the normalised mix

        def __post_init__(self):
            check_nonnegative(epsilon=self.epsilon, alpha=self.alpha)
            check_steps("steps", self.steps)
            check_choice("norm", self.norm, NORMS)
            combine_weights(self.clean_weight, self.adv_weight)

    def cost(self) -> Cost:
        p = self.params
        if p.epsilon == 0 or p.steps == 0:
            return Cost(1, 1, 1)
        wc, _ = combine_weights(p.clean_weight, p.adv_weight)
        return Cost(p.steps + 1, p.steps + 1, 1 + (wc > 0))

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        p = self.params
        if p.epsilon == 0 or p.steps == 0:
            return self.clean_step(batch, backward)
        wc, wa = combine_weights(p.clean_weight, p.adv_weight)

        probe = clean_probe(batch, backward, wc)
        if isinstance(probe, StepOutput):
            return probe
        grad, mask = probe.grad, probe.mask
        fixed = probe.embeds.detach()  # ascent steps need no gradient into the embedding table
        if p.random_init:
            delta = random_in_ball(self, fixed, mask, p.epsilon, p.norm)
        else:
            delta = torch.zeros_like(fixed)
        for k in range(p.steps):
            if k > 0:
                delta.requires_grad_(True)
                loss = task_loss(batch.forward(fixed + delta), batch.labels)
                (grad,) = torch.autograd.grad(loss, delta)
            delta = project(delta.detach() + p.alpha * direction(grad * mask, p.norm), p.epsilon, p.norm) * mask
            if not is_finite(delta):
                break  # adversarial_finish skips the step
        return adversarial_finish(batch, delta, probe, wc, wa, backward)
