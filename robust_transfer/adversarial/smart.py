"""SMART's smoothness-inducing adversarial regularizer (Jiang et al., ACL 2020).

    total = clean_weight * L(x) + adv_weight * symKL(f(x), f(x + delta))
            [+ bregman_mu * symKL(f(x; theta), f(x; theta_teacher))]

The default follows the public code that produced the paper's numbers, mt-dnn
(`mt_dnn/perturbation.py` SmartPerturbation, `mt_dnn/loss.py` stable_kl and SymKlCriterion),
where it and the paper's text disagree:

- start: delta = N(0, noise_var^2) on the real tokens (mt-dnn's `noise_var` is a std);
- `steps` ascent steps on mt-dnn's `stable_kl(f(x + delta), sg f(x))`, summed over the batch
  (`inner_loss: stable_kl`): g = d/d delta, then

      delta <- v / (||v|| + epsilon),   v = delta + step_size * g      (perturbation_scale: unit)

  with ||.|| the max-abs (linf) or L2 norm per token over H (`norm_level: token`) or per
  example over (T, H) (`sentence`). The perturbation is thus rescaled to unit norm per token
  and `epsilon` (mt-dnn `--adv_epsilon`, 1e-6) is only a stabiliser in the denominator;
- the regularizer is mt-dnn's `SymKlCriterion`: KL(sg(q) || p) + KL(sg(p) || q), p clean and
  q perturbed predictions, so it smooths both; the perturbed pass reuses the clean
  embedding graph (the embedding table is trained through both passes, as in mt-dnn).

The paper's reading, as options: `perturbation_scale: radius` takes
delta <- Proj_eps(delta + step_size * g / ||g||) (Algorithm 1, epsilon a radius: at the
paper's 1e-5 that changes gradients by ~1e-6 relative, i.e. nothing), and
`inner_loss: symmetric_kl` ascends the symmetric KL of the paper (gradient through both
directions, batch mean) instead of mt-dnn's stable_kl.

Other departures: the perturbation lives on the word embeddings and is zero on padding (as
every regularizer here); mt-dnn perturbs the embedding layer's output and leaves padding
noisy (which cannot change the logits: padding is masked out of attention). A non-finite
inner gradient skips the step; mt-dnn instead drops the regularizer for that batch.

The Bregman proximal point term (the paper's Section 3.2, the momentum variant) is an
option: `bregman_mu > 0` adds mu * symKL between the model and a momentum teacher
theta_teacher <- beta * theta_teacher + (1 - beta) * theta after each optimizer step
(`bregman_beta`), with the gradient through the model's side of both KL directions. The
regularizer never sees the optimizer or the weights: it asks for the teacher's logits
(`batch.teacher`), and the caller keeps the teacher (`wants_teacher`, `teacher_decay`;
the LightningModule uses torch.optim.swa_utils.AveragedModel). mt-dnn does not implement it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    is_finite,
    mask3,
    mean_l2,
    safe_norm,
    symmetric_kl,
    task_loss,
)
from robust_transfer.registry.regularizers import SMARTParams


def stable_kl(logits: Tensor, target: Tensor, eps: float = 1e-6) -> Tensor:
    """mt-dnn's `stable_kl(logit, target, reduce=False)`: sum over the batch of
    2 * sum_c p_c * (lo(p_c) - lo(y_c)), p = softmax(logits), y = softmax(target), with the
    smoothed log-odds lo(u) = -log(1 / (u + eps) - 1 + eps) treated as constants, so the
    gradient reaches `logits` only through the leading p_c. Written out because no library
    has it; it is the inner objective mt-dnn's SMART ascends."""
    p = F.softmax(logits.float(), dim=-1)
    y = F.softmax(target.float(), dim=-1)
    rp = -(1.0 / (p + eps) - 1 + eps).detach().log()
    ry = -(1.0 / (y + eps) - 1 + eps).detach().log()
    return (p * (rp - ry) * 2).sum()


def _norm(x: Tensor, norm: str, level: str) -> Tensor:
    """||x|| per token (over H) or per example (over T, H), keepdim, float32."""
    x = x.float()
    dims = (-1,) if level == "token" else tuple(range(1, x.dim()))
    if norm == "linf":
        return x.abs().amax(dim=dims, keepdim=True)
    return safe_norm(x, dim=dims, keepdim=True)


def _normalise(grad: Tensor, norm: str, level: str) -> Tensor:
    """g / ||g|| per token or per example; zero where g is zero (the paper's Algorithm 1)."""
    g = grad.float()
    n = _norm(g, norm, level)
    return torch.where(n > 0, g / n.clamp_min(torch.finfo(torch.float32).tiny), 0.0).to(grad.dtype)


def _unit(v: Tensor, norm: str, level: str, epsilon: float) -> Tensor:
    """v / (||v|| + epsilon): mt-dnn's `SmartPerturbation._norm_grad` applied to delta + eta g
    (zero where v is zero, e.g. on padding, even with epsilon 0)."""
    n = _norm(v, norm, level) + epsilon
    return torch.where(n > 0, v.float() / n.clamp_min(torch.finfo(torch.float32).tiny), 0.0).to(v.dtype)


def _project(delta: Tensor, epsilon: float, norm: str, level: str) -> Tensor:
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    d = delta.float()
    n = _norm(d, "l2", level)
    scale = torch.where(n > epsilon, epsilon / n.clamp_min(torch.finfo(torch.float32).tiny), 1.0)
    return (d * scale).to(delta.dtype)


class SMART(Regularizer):
    name = "smart"
    Params = SMARTParams

    @property
    def wants_teacher(self) -> bool:
        return self.params.bregman_mu > 0

    @property
    def teacher_decay(self) -> float:
        return float(self.params.bregman_beta)

    def _smooth(self) -> bool:
        """Whether the smoothness term is on (radius 0, or weight 0, turns it off)."""
        p = self.params
        if p.adv_weight == 0:
            return False
        return p.perturbation_scale == "unit" or p.epsilon > 0

    def cost(self) -> Cost:
        k = self.params.steps
        teacher = int(self.wants_teacher)  # one forward of the teacher, no backward
        if not self._smooth():
            return Cost(1 + teacher, 1, 1)
        # clean and final perturbed passes are both back-propagated in full; each ascent step
        # is a forward plus a backward wrt the perturbation only
        return Cost(2 + k + teacher, 2 + k, 2)

    def _inner(self, target: Tensor, adv_logits: Tensor) -> Tensor:
        if self.params.inner_loss == "stable_kl":
            return stable_kl(adv_logits, target)
        return symmetric_kl(target, adv_logits)  # target is detached: both directions reach delta

    def _bregman(self, batch: AdversarialBatch, logits: Tensor) -> Tensor | None:
        if not self.wants_teacher:
            return None
        if batch.teacher is None:
            raise RuntimeError(
                "smart with bregman_mu > 0 needs batch.teacher (the momentum teacher's logits); "
                "the caller keeps the teacher when regularizer.wants_teacher is true"
            )
        with torch.no_grad():
            teacher = batch.teacher()
        return symmetric_kl(logits, teacher.detach())

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        p = self.params
        embeds = batch.embed()
        mask = mask3(batch, embeds)
        logits = batch.forward(embeds)
        clean = task_loss(logits, batch.labels)
        if not is_finite(clean):
            return StepOutput.skip(clean)
        total = clean if p.clean_weight == 1 else p.clean_weight * clean
        bregman = self._bregman(batch, logits)
        if bregman is not None:
            if not is_finite(bregman):
                return StepOutput.skip(clean)
            total = total + p.bregman_mu * bregman
        if not self._smooth():
            backward(total)
            return StepOutput(total.detach(), clean.detach(), None, None)

        target = logits.detach()
        fixed = embeds.detach()
        delta = self.randn(fixed) * p.noise_var * mask
        unit = p.perturbation_scale == "unit"
        if not unit:
            delta = _project(delta, p.epsilon, p.norm, p.norm_level)
        for _ in range(p.steps):
            delta.requires_grad_(True)
            inner = self._inner(target, batch.forward(fixed + delta))
            (grad,) = torch.autograd.grad(inner, delta)
            if not is_finite(grad):
                return StepOutput.skip(clean)
            grad = grad * mask
            if unit:
                delta = _unit(delta.detach() + p.step_size * grad, p.norm, p.norm_level, p.epsilon) * mask
            else:
                step = p.step_size * _normalise(grad, p.norm, p.norm_level)
                delta = _project(delta.detach() + step, p.epsilon, p.norm, p.norm_level) * mask
        if not is_finite(delta):
            return StepOutput.skip(clean)

        reg = symmetric_kl(logits, batch.forward(embeds + delta), detach_targets=True)
        if not is_finite(reg):
            return StepOutput.skip(clean)
        total = total + p.adv_weight * reg
        backward(total)
        return StepOutput(total.detach(), clean.detach(), reg.detach(), mean_l2(delta))
