"""SMART's smoothness-inducing adversarial regularizer (Jiang et al., ACL 2020).

    total = clean_weight * L(x) + adv_weight * symKL(f(x), f(x + delta))

delta starts as Gaussian noise N(0, noise_var^2) on the real tokens (mt-dnn's `noise_var`
is a standard deviation) and takes `steps` projected ascent steps on the symmetric KL
between the clean predictions (a detached target here) and the perturbed ones:

    delta <- Proj_eps(delta + step_size * g / ||g||)

with g normalised as in mt-dnn (`SmartPerturbation._norm_grad`): per token over H (the
default `norm_level: token`) or per example over (T, H) (`sentence`), by the max-abs (linf)
or the L2 norm (l2). Proj_eps is the paper's Algorithm 1 projection onto the ball of radius
epsilon (elementwise for linf; per token or per example for l2). mt-dnn instead rescales the
accumulated perturbation to unit norm, which makes epsilon a numerical stabiliser; we keep
the paper's radius so that epsilon means a size. The final regularizer is mt-dnn's
`SymKlCriterion`: KL(sg(p) || q) + KL(sg(q) || p), so it smooths both the clean and the
perturbed predictions, and the perturbed pass reuses the clean embedding graph (gradients
reach the embedding table through both).

`clean_weight` scales the task loss (1 = the paper); `adv_weight` is the paper's lambda_s
(mt-dnn `--adv_alpha`). The Bregman proximal point term (the momentum "mean teacher" of the
previous iterate) is not implemented: it needs a copy of the model, which a regularizer
never sees; use the optimizer-side EMA of the module if needed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    check_choice,
    check_nonnegative,
    check_steps,
    is_finite,
    mask3,
    mean_l2,
    per_example,
    register,
    symmetric_kl,
    task_loss,
)


def _normalise(grad: Tensor, norm: str, level: str) -> Tensor:
    """g / ||g|| per token (over H) or per example (over T, H); zero where g is zero."""
    g = grad.float()
    dims = (-1,) if level == "token" else tuple(range(1, g.dim()))
    n = g.abs().amax(dim=dims, keepdim=True) if norm == "linf" else g.norm(dim=dims, keepdim=True)
    return torch.where(n > 0, g / n.clamp_min(torch.finfo(torch.float32).tiny), 0.0).to(grad.dtype)


def _project(delta: Tensor, epsilon: float, norm: str, level: str) -> Tensor:
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    d = delta.float()
    if level == "token":
        n = d.norm(dim=-1, keepdim=True)
    else:
        n = per_example(d, d.flatten(1).norm(dim=1))
    scale = torch.where(n > epsilon, epsilon / n.clamp_min(torch.finfo(torch.float32).tiny), 1.0)
    return (d * scale).to(delta.dtype)


@register
class SMART(Regularizer):
    name = "smart"

    @dataclass
    class Params:
        epsilon: float = 1e-5  # radius of the perturbation ball (paper: 1e-5)
        step_size: float = 1e-3  # ascent step size eta (paper: 1e-3)
        noise_var: float = 1e-5  # std of the initial Gaussian noise sigma (paper and mt-dnn: 1e-5)
        steps: int = 1  # projected ascent steps T_x (paper and mt-dnn: 1); 0 = noise only
        norm: str = "linf"  # gradient normalisation and ball: linf (mt-dnn default) or l2
        norm_level: str = (
            "token"  # normalise per token over H (mt-dnn default) or per example (sentence)
        )
        clean_weight: float = 1.0  # scale of the task loss (1 = the paper)
        adv_weight: float = 1.0  # lambda_s, the weight of the symmetric-KL smoothness term

        def __post_init__(self):
            check_nonnegative(
                epsilon=self.epsilon,
                step_size=self.step_size,
                noise_var=self.noise_var,
                clean_weight=self.clean_weight,
                adv_weight=self.adv_weight,
            )
            check_steps("steps", self.steps)
            check_choice("norm", self.norm, ("linf", "l2"))
            check_choice("norm_level", self.norm_level, ("token", "sentence"))

    def _is_clean(self) -> bool:
        return self.params.epsilon == 0 or self.params.adv_weight == 0

    def cost(self) -> Cost:
        if self._is_clean():
            return Cost(1, 1, 1)
        k = self.params.steps
        # clean and final perturbed passes are both back-propagated in full; each ascent step
        # is a forward plus a backward wrt the perturbation only
        return Cost(2 + k, 2 + k, 2)

    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        p = self.params
        if self._is_clean():
            return self.clean_step(batch, backward, weight=p.clean_weight)

        embeds = batch.embed()
        mask = mask3(batch, embeds)
        logits = batch.forward(embeds)
        clean = task_loss(logits, batch.labels)
        if not is_finite(clean):
            return StepOutput.skip(clean)

        target = logits.detach()
        fixed = embeds.detach()
        delta = _project(self.randn(fixed) * p.noise_var * mask, p.epsilon, p.norm, p.norm_level)
        for _ in range(p.steps):
            delta.requires_grad_(True)
            inner = symmetric_kl(target, batch.forward(fixed + delta), detach_targets=True)
            (grad,) = torch.autograd.grad(inner, delta)
            if not is_finite(grad):
                return StepOutput.skip(clean)
            step = p.step_size * _normalise(grad * mask, p.norm, p.norm_level)
            delta = _project(delta.detach() + step, p.epsilon, p.norm, p.norm_level) * mask
        if not is_finite(delta):
            return StepOutput.skip(clean)

        reg = symmetric_kl(logits, batch.forward(embeds + delta), detach_targets=True)
        if not is_finite(reg):
            return StepOutput.skip(clean)
        total = p.clean_weight * clean + p.adv_weight * reg
        backward(total)
        return StepOutput(total.detach(), clean.detach(), reg.detach(), mean_l2(delta))
