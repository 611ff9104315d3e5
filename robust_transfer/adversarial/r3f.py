"""R3F: better fine-tuning by reducing representational collapse (Aghajanyan et al., 2020).

    total = clean_weight * L(x) + adv_weight * symKL(f(x), f(x + z)),   z ~ U(-eps, eps) or N(0, eps^2)

No inner maximisation: one noisy forward pass. As in fairseq's `sentence_prediction_r3f`
criterion, the noise is added to a detached copy of the embeddings (the noisy pass trains
the encoder, not the embedding table) and the symmetric KL is not detached on either side.
Noise is zero on padding. `adv_weight` is the paper's lambda (fairseq `--r3f-lambda`),
`clean_weight` scales the task loss (1 = the paper).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    is_finite,
    mask3,
    mean_l2,
    symmetric_kl,
    task_loss,
    uniform_or_normal,
)
from robust_transfer.registry.regularizers import R3FParams


class R3F(Regularizer):
    name = "r3f"
    Params = R3FParams

    def _is_clean(self) -> bool:
        return self.params.epsilon == 0 or self.params.adv_weight == 0

    def cost(self) -> Cost:
        return Cost(1, 1, 1) if self._is_clean() else Cost(2, 2, 2)

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        p = self.params
        if self._is_clean():
            return self.clean_step(batch, backward, weight=p.clean_weight)
        embeds = batch.embed()
        logits = batch.forward(embeds)
        clean = task_loss(logits, batch.labels)
        if not is_finite(clean):
            return StepOutput.skip(clean)
        fixed = embeds.detach()
        noise = uniform_or_normal(self, fixed, p.epsilon, p.noise) * mask3(batch, fixed)
        reg = symmetric_kl(logits, batch.forward(fixed + noise))
        if not is_finite(reg):
            return StepOutput.skip(clean)
        total = p.clean_weight * clean + p.adv_weight * reg
        backward(total)
        return StepOutput(total.detach(), clean.detach(), reg.detach(), mean_l2(noise))
