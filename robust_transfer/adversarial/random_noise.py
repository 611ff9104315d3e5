"""Randomized smoothing by random perturbation (Huang et al., EMNLP 2021).

Train under random noise on the word embeddings of the real tokens:

    total = (clean_weight * L(x) + adv_weight * L(x + z)) / (clean_weight + adv_weight)
    z ~ N(0, sigma^2) (normal) or U(-sigma, sigma) (uniform), per entry, zero on padding

The clean and the noisy pass are back-propagated one after the other, so one graph is alive
at a time. With clean_weight 0 the clean loss is still computed, without gradient, for logging.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    combine_weights,
    discard_grads,
    is_finite,
    mask3,
    mean_l2,
    task_loss,
    uniform_or_normal,
)
from robust_transfer.registry.regularizers import RandomNoiseParams


class RandomNoise(Regularizer):
    name = "random"
    Params = RandomNoiseParams

    def _is_clean(self) -> bool:
        return self.params.sigma == 0 or self.params.adv_weight == 0

    def cost(self) -> Cost:
        if self._is_clean():
            return Cost(1, 1, 1)
        wc, _ = combine_weights(self.params.clean_weight, self.params.adv_weight)
        return Cost(2, 1 + (wc > 0), 1 + (wc > 0))

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        p = self.params
        if self._is_clean():
            return self.clean_step(batch, backward)
        wc, wa = combine_weights(p.clean_weight, p.adv_weight)
        done = []
        if wc > 0:
            clean = task_loss(batch.forward(batch.embed()), batch.labels)
            if not is_finite(clean):
                return StepOutput.skip(clean)
            backward(clean * wc)
            done.append(clean)
        else:
            with torch.no_grad():
                clean = task_loss(batch.forward(batch.embed()), batch.labels)
            if not is_finite(clean):
                return StepOutput.skip(clean)

        embeds = batch.embed()
        noise = uniform_or_normal(self, embeds.detach(), p.sigma, p.noise) * mask3(batch, embeds)
        noisy = task_loss(batch.forward(embeds + noise), batch.labels)
        if not is_finite(noisy):
            discard_grads(done)
            return StepOutput.skip(clean)
        backward(noisy * wa)
        total = wc * clean.detach() + wa * noisy.detach()
        return StepOutput(total, clean.detach(), noisy.detach(), mean_l2(noise))
