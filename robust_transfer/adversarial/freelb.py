"""FreeLB: free large-batch adversarial training (Zhu et al., ICLR 2020).

K ascent steps on a perturbation of the word embeddings; at every step the loss divided by K
is back-propagated, so the parameter gradient handed to the single optimizer step is the
average of the K per-step gradients ("free" adversarial training over a virtual batch of K
perturbed copies). Matches the reference code (zhuchen03/FreeLB, run_glue_freelb.py):

- init: l2: U(-1, 1) on real entries times init_mag / sqrt(real_len * H) per example;
  linf: U(-init_mag, init_mag); init_mag 0 starts at zero;
- ascent: delta += adv_lr * g / ||g|| per example (L2 norm for l2, max-abs for linf),
  then projection onto max_norm (0 = unbounded): L2 rescaling or elementwise clamp;
- the embeddings are looked up afresh at every step, so only one graph is alive at a time
  and memory stays near a clean step;
- dropout: the K passes share one set of dropout masks, drawn by the first pass (the
  reference's `dp_masks`, fairseq's `init_dp`). The reference threads the mask tensors
  through a modified BERT; we reach the same masks on any unmodified encoder by running
  passes 1..K-1 inside `torch.random.fork_rng` (CPU, and the CUDA device of the
  embeddings), which restores the RNG state after each, so every pass makes the same random
  draws in the same order; the state after the step is the one after a single pass. `dropout_masks: fresh` (a departure,
  the project's behaviour before) draws new masks at every pass.

    total = (clean_weight * L(x) + adv_weight * mean_k L(x + delta_k)) / (clean_weight + adv_weight)

The reference objective is clean_weight 0 (the default); a positive clean_weight adds one
clean forward+backward. `clean_loss` is then the true clean loss; with clean_weight 0 it is
the loss at the initial perturbation (exactly the clean loss when init_mag is 0), which
avoids an extra forward pass. `adv_loss` is the loss at the last step.
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
    direction,
    discard_grads,
    is_finite,
    mask3,
    mean_l2,
    per_example,
    project,
    require_grad,
    task_loss,
)
from robust_transfer.registry.regularizers import FreeLBParams


class FreeLB(Regularizer):
    name = "freelb"
    Params = FreeLBParams

    def _is_clean(self) -> bool:
        p = self.params
        return p.steps == 0 or (p.adv_lr == 0 and p.init_mag == 0) or p.adv_weight == 0

    def cost(self) -> Cost:
        if self._is_clean():
            return Cost(1, 1, 1)
        n = self.params.steps + (self.params.clean_weight > 0)
        return Cost(n, n, n)

    def _init(self, embeds: Tensor, mask: Tensor) -> Tensor:
        p = self.params
        if p.init_mag == 0:
            return torch.zeros_like(embeds)
        if p.norm == "linf":
            return (self.rand(embeds) * 2 - 1) * p.init_mag * mask
        dims = mask.flatten(1).sum(1).clamp_min(1) * embeds.shape[-1]
        return (self.rand(embeds) * 2 - 1) * mask * per_example(embeds, p.init_mag / dims.sqrt())

    def _ascend(self, delta: Tensor, grad: Tensor, mask: Tensor) -> Tensor:
        p = self.params
        if p.norm == "linf":  # the reference normalises by the per-example max-abs, not the sign
            peak = per_example(grad, grad.float().flatten(1).abs().amax(1))
            step = torch.where(
                peak > 0, grad.float() / peak.clamp_min(torch.finfo(torch.float32).tiny), 0.0
            )
        else:
            step = direction(grad, "l2").float()
        delta = delta + p.adv_lr * step.to(delta.dtype) * mask
        if p.max_norm > 0:
            delta = project(delta, p.max_norm, p.norm)
        return delta

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        p = self.params
        if self._is_clean():
            return self.clean_step(batch, backward)
        wc, wa = combine_weights(p.clean_weight, p.adv_weight)
        done: list[Tensor] = []

        clean = None
        if wc > 0:
            clean = task_loss(batch.forward(batch.embed()), batch.labels)
            if not is_finite(clean):
                return StepOutput.skip(clean)
            backward(clean * wc)
            done.append(clean)

        embeds = batch.embed()
        mask = mask3(batch, embeds)
        delta = self._init(embeds.detach(), mask)
        cuda = [embeds.device] if embeds.device.type == "cuda" else []
        losses = []
        for k in range(p.steps):
            if k > 0:
                embeds = batch.embed()  # the previous graph was freed by backward
            delta.requires_grad_(True)
            # passes 1..K-1 hand the RNG state back, so the next pass draws the same masks
            replay = p.dropout_masks == "shared" and k < p.steps - 1
            with torch.random.fork_rng(devices=cuda, enabled=replay):
                loss = task_loss(batch.forward(embeds + delta), batch.labels)
            if not is_finite(loss):
                discard_grads(done)
                return StepOutput.skip(clean if clean is not None else loss)
            backward(loss * (wa / p.steps))
            done.append(loss)
            losses.append(loss.detach())
            if k == p.steps - 1:
                break
            delta = self._ascend(delta.detach(), require_grad(delta).detach() * mask, mask)
            if not is_finite(delta):
                discard_grads(done)
                return StepOutput.skip(clean if clean is not None else losses[0])

        adv_mean = torch.stack(losses).mean()
        clean_loss = clean.detach() if clean is not None else losses[0]
        total = wa * adv_mean + (wc * clean_loss if clean is not None else 0.0)
        return StepOutput(total, clean_loss, losses[-1], mean_l2(delta.detach()))
