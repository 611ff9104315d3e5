"""The regularizer interface, the registry, and the tensor helpers every regularizer shares.

A regularizer sees a batch only as `AdversarialBatch`: a way to get fresh word embeddings,
a way to turn (perturbed) embeddings into logits, the padding mask and the labels. It
computes one training objective, back-propagates it through the caller's `backward`, and
reports what it did in a `StepOutput`. It never touches data sources, optimizers or models.

Conventions shared by every regularizer:
- perturbations live in word-embedding space, shape (B, T, H), and are exactly zero on
  padding positions;
- "per example" norms are over the (T, H) entries of the real tokens: L2 is the Frobenius
  norm of the example's perturbation, Linf is elementwise;
- a non-finite loss or perturbation ends the step with `skipped=True` and no parameter
  gradient left behind, so the caller skips the optimizer step and weights stay finite;
- under torch.distributed every finiteness check is collective (`is_finite` all-reduces the
  flag): every rank runs the same checks at the same points, so when one rank sees a
  non-finite value all ranks stop at the same check, after the same number of backward
  passes, and none is left waiting in DDP's gradient all-reduce;
- norms are computed scaled by the largest entry, so they cannot overflow float32, and size
  parameters above `registry.checks.MAX_BUDGET` are rejected by the parameter dataclasses
  (robust_transfer/registry/regularizers.py), so a config error, before any training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from robust_transfer.registry import build, typed
from robust_transfer.registry.checks import NORMS, combine_weights


@dataclass
class AdversarialBatch:
    """One training batch, as a regularizer sees it."""

    embed: Callable[[], Tensor]  # fresh word embeddings (B,T,H); call once per forward pass
    forward: Callable[[Tensor], Tensor]  # inputs_embeds (B,T,H) -> logits (B,C), mask bound inside
    mask: Tensor  # (B,T): 1 for real tokens, 0 for padding
    labels: Tensor  # (B,)
    # logits of a momentum (EMA) copy of the model on the clean batch, without gradient; set by
    # the caller only for a regularizer whose `wants_teacher` is true (SMART's Bregman term)
    teacher: Callable[[], Tensor] | None = None


@dataclass
class StepOutput:
    """What one `Regularizer.step` did; every tensor is detached."""

    loss: Tensor  # the total training loss that was back-propagated
    clean_loss: Tensor  # the task loss on the unperturbed batch
    adv_loss: Tensor | None  # the adversarial (or noisy) task loss, or the KL term for SMART/R3F
    delta_norm: (
        Tensor | None
    )  # mean over examples of the per-example L2 norm of the final perturbation
    skipped: bool = (
        False  # a non-finite loss/perturbation was caught; no parameter gradient was left
    )

    @classmethod
    def skip(cls, clean_loss: Tensor | None = None) -> StepOutput:
        nan = torch.tensor(float("nan"))
        clean = nan if clean_loss is None else clean_loss.detach()
        return cls(loss=clean, clean_loss=clean, adv_loss=None, delta_norm=None, skipped=True)


class Cost(NamedTuple):
    """Passes through the network per training step, for the benchmark's theoretical ratio.

    `backward_input` counts back-propagation of activation gradients, `backward_weight` the
    weight-gradient half of a backward pass: `torch.autograd.grad` wrt the perturbation only
    does the former. A clean step is (1, 1, 1); with forward ~ each backward half in FLOPs the
    theoretical step ratio is `total / 3`.
    """

    forward: int
    backward_input: int
    backward_weight: int

    @property
    def total(self) -> int:
        return self.forward + self.backward_input + self.backward_weight


class Regularizer(ABC):
    """One training objective. Subclasses set `name`, a `Params` dataclass, and `step`."""

    name: ClassVar[str]
    Params: ClassVar[type]  # its registered dataclass of hyperparameters (robust_transfer/registry/regularizers.py)

    @property
    def wants_teacher(self) -> bool:
        """True when `step` needs `batch.teacher`: a momentum copy of the model kept by the caller.

        `teacher_decay` is then the EMA decay the caller uses after each optimizer step:
        teacher <- decay * teacher + (1 - decay) * weights (SMART's beta).
        """
        return False

    teacher_decay: float = 0.0

    def __init__(self, params: Any = None, *, generator: torch.Generator | None = None):
        self.params = typed(self.Params, params, f"adversary '{self.name}'")
        # Source of the random initialisations/noise; None means torch's global RNG.
        self.generator = generator

    @abstractmethod
    def step(self, batch: AdversarialBatch, backward: Callable[[Tensor], None]) -> StepOutput:
        """Compute the training objective for one batch and back-propagate it via `backward`.

        `backward(loss)` must behave like `loss.backward()` (e.g. `LightningModule.manual_backward`):
        some regularizers read the gradient of a perturbation leaf after it. The caller zeroes
        grads before and runs `optimizer.step()` after unless the output says `skipped`.
        """

    def cost(self) -> Cost:
        """Network passes per step (see `Cost`); the clean step is the default."""
        return Cost(1, 1, 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"

    # ---------------------------------------------------------------- shared pieces

    def clean_step(
        self, batch: AdversarialBatch, backward: Callable[[Tensor], None], weight: float = 1.0
    ) -> StepOutput:
        """Plain training on the task loss (scaled by `weight`); the epsilon-0 short circuit."""
        clean = task_loss(batch.forward(batch.embed()), batch.labels)
        if not is_finite(clean):
            return StepOutput.skip(clean)
        total = clean if weight == 1.0 else clean * weight
        backward(total)
        return StepOutput(total.detach(), clean.detach(), None, None)

    def randn(self, like: Tensor) -> Tensor:
        """Standard normal noise shaped like `like` (from `self.generator` when set)."""
        return self._draw(torch.randn, like)

    def rand(self, like: Tensor) -> Tensor:
        """Uniform [0, 1) noise shaped like `like` (from `self.generator` when set)."""
        return self._draw(torch.rand, like)

    def _draw(self, sample, like: Tensor) -> Tensor:
        if self.generator is None:
            return sample(like.shape, dtype=like.dtype, device=like.device)
        g = self.generator
        return sample(like.shape, generator=g, device=g.device, dtype=like.dtype).to(like.device)


# -------------------------------------------------------------------- building


def build_regularizer(
    name: str, params: Any = None, *, generator: torch.Generator | None = None
) -> Regularizer:
    """`registry.build("regularizer", name, params)`: `params` over the registered defaults.

    `params` may repeat `name` (a whole `configs/adversary/*.yaml`). A ValueError names an
    unknown regularizer (listing the valid ones) or an unknown parameter (and the nearest valid one).
    """
    return build("regularizer", name, params, generator=generator)


# -------------------------------------------------------------------- tensor helpers


def task_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy, computed in float32."""
    return F.cross_entropy(logits.float(), labels)


def require_grad(leaf: Tensor) -> Tensor:
    """The gradient that `backward` left on a perturbation leaf (it must act like loss.backward())."""
    if leaf.grad is None:
        raise RuntimeError(
            "backward(loss) left no gradient on the perturbation: it must behave like loss.backward() "
            "(e.g. LightningModule.manual_backward), not restrict `inputs` to the parameters"
        )
    return leaf.grad


def is_finite(*tensors: Tensor) -> bool:
    """True when every tensor is finite here and, under torch.distributed, on every rank.

    A collective (one all-reduce of a flag) when a process group of several ranks is
    initialised: each rank must call it at the same points, which the regularizers do since
    their control flow depends only on these agreed flags and on their parameters.
    """
    ok = all(bool(torch.isfinite(t).all()) for t in tensors)
    return agree(ok, tensors[0].device if tensors else None)


def agree(ok: bool, device: torch.device | None = None) -> bool:
    """`ok` on every rank (all-reduce MIN of the flag); just `ok` without a process group."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return ok
    if dist.get_backend() == "nccl" and (device is None or device.type != "cuda"):
        device = torch.device("cuda", torch.cuda.current_device())
    flag = torch.tensor([1 if ok else 0], dtype=torch.int32, device=device or "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def mask3(batch: AdversarialBatch, like: Tensor) -> Tensor:
    """The padding mask as (B, T, 1) in `like`'s dtype and device."""
    return batch.mask.unsqueeze(-1).to(device=like.device, dtype=like.dtype)


def safe_norm(x: Tensor, dim: int | tuple[int, ...], keepdim: bool = False) -> Tensor:
    """The L2 norm over `dim` in float32, computed as max|x| * ||x / max|x|||: the sum of squares
    of the scaled entries is at most their count, so a finite x never gives an overflowed
    (inf) norm. (torch.linalg.vector_norm does not rescale: entries above ~1e19 give inf.)
    A zero slice gives 0; a slice holding inf or NaN gives NaN."""
    x = x.float()
    peak = x.abs().amax(dim=dim, keepdim=True)
    scaled = torch.where(peak > 0, x / peak.clamp_min(torch.finfo(torch.float32).tiny), 0.0)
    n = scaled.norm(dim=dim, keepdim=True) * peak
    return n if keepdim else n.squeeze(dim)


def example_l2(delta: Tensor) -> Tensor:
    """Per-example L2 norm over (T, H), float32, shape (B,); never overflows (`safe_norm`)."""
    return safe_norm(delta.flatten(1), dim=1)


def mean_l2(delta: Tensor) -> Tensor:
    return example_l2(delta).mean().detach()


def per_example(x: Tensor, values: Tensor) -> Tensor:
    return values.view(-1, *([1] * (x.dim() - 1)))


def direction(grad: Tensor, norm: str) -> Tensor:
    """The steepest-ascent direction of unit size: grad / ||grad||_2 per example, or sign(grad).

    An all-zero gradient gives a zero direction (no arbitrary epsilon in the denominator).
    """
    if norm == "linf":
        return grad.sign()
    n = per_example(grad, example_l2(grad))
    g = grad.float()
    return torch.where(
        n > 0, g / n.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(g)
    ).to(grad.dtype)


def project(delta: Tensor, epsilon: float, norm: str) -> Tensor:
    """Projection onto the per-example L2 ball or the elementwise Linf ball of radius epsilon."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    n = per_example(delta, example_l2(delta))
    scale = torch.where(
        n > epsilon, epsilon / n.clamp_min(torch.finfo(torch.float32).tiny), torch.ones_like(n)
    )
    return (delta.float() * scale).to(delta.dtype)


def random_in_ball(
    reg: Regularizer, like: Tensor, mask: Tensor, epsilon: float, norm: str
) -> Tensor:
    """A uniform sample from the ball of radius epsilon over the real tokens (zero on padding).

    Linf: each real entry uniform in [-eps, eps]. L2: a uniform direction (normalised Gaussian)
    times radius eps * U^(1/d), d = real_len * H, the exact uniform-in-ball law (close to the
    sphere for realistic d).
    """
    if norm == "linf":
        return (reg.rand(like) * 2 - 1) * epsilon * mask
    dir_ = direction(reg.randn(like) * mask, "l2")
    dims = (mask.flatten(1).sum(1) * like.shape[-1]).clamp_min(1).float()
    u = reg.rand(dims).float()
    radius = epsilon * u.pow(1.0 / dims)
    return (dir_.float() * per_example(like, radius)).to(like.dtype) * mask


def kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(p || q) averaged over the batch, from logits, in float32."""
    return F.kl_div(
        F.log_softmax(q_logits.float(), dim=-1),
        F.log_softmax(p_logits.float(), dim=-1),
        reduction="batchmean",
        log_target=True,
    )


def symmetric_kl(a: Tensor, b: Tensor, detach_targets: bool = False) -> Tensor:
    """KL(a||b) + KL(b||a) averaged over the batch.

    detach_targets=True is mt-dnn's `SymKlCriterion`: in each direction the reference
    distribution is a constant, so the gradient reaches each logit tensor only through its
    own log-probabilities.
    """
    if detach_targets:
        return kl(a.detach(), b) + kl(b.detach(), a)
    return kl(a, b) + kl(b, a)


def discard_grads(losses: Iterable[Tensor]) -> None:
    """Undo already back-propagated losses: set .grad = None on every parameter they reached.

    Used when a later pass of a multi-backward step (FreeLB, FGSM, ...) turns out non-finite.
    The parameters are found by walking each loss's autograd graph to its AccumulateGrad
    nodes, which stay reachable after backward (only saved activations are freed).
    """
    seen: set[int] = set()
    stack = [loss.grad_fn for loss in losses if loss.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if fn is None or id(fn) in seen:
            continue
        seen.add(id(fn))
        variable = getattr(fn, "variable", None)
        if isinstance(variable, Tensor):
            variable.grad = None
        stack.extend(next_fn for next_fn, _ in fn.next_functions)


def uniform_or_normal(reg: Regularizer, like: Tensor, scale: float, noise: str) -> Tensor:
    """Noise of scale `scale`: U(-scale, scale) for 'uniform', N(0, scale^2) for 'normal'."""
    if noise == "uniform":
        return (reg.rand(like) * 2 - 1) * scale
    return reg.randn(like) * scale


__all__ = [
    "NORMS",
    "AdversarialBatch",
    "Cost",
    "Regularizer",
    "StepOutput",
    "build_regularizer",
    "combine_weights",
]


@dataclass
class CleanProbe:
    """The clean pass of a gradient-based attack: loss, the gradient wrt the embeddings, and the
    losses already back-propagated (to discard if a later pass goes non-finite)."""

    embeds: Tensor
    mask: Tensor
    clean: Tensor
    grad: Tensor | None
    done: list[Tensor]


def clean_probe(
    batch: AdversarialBatch, backward: Callable[[Tensor], None], wc: float, need_grad: bool = True
) -> CleanProbe | StepOutput:
    """One clean forward+backward that also yields dL/dx; a StepOutput (skip) if non-finite.

    With a clean term (wc > 0) its weighted backward runs here and the gradient comes for free
    from a zero leaf added to the embeddings; without one, only the gradient wrt x is taken
    (and with need_grad=False none: the clean loss is then computed without a graph).
    """
    embeds = batch.embed()
    mask = mask3(batch, embeds)
    if wc == 0 and not need_grad:
        with torch.no_grad():
            clean = task_loss(batch.forward(embeds), batch.labels)
        if not is_finite(clean):
            return StepOutput.skip(clean)
        return CleanProbe(embeds, mask, clean, None, [])
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
    return CleanProbe(embeds, mask, clean, grad, done)


def adversarial_finish(
    batch: AdversarialBatch, delta: Tensor, probe: CleanProbe, wc: float, wa: float, backward: Callable[[Tensor], None]
) -> StepOutput:
    """Back-propagate the weighted loss at x + delta and report the mixed total."""
    if not is_finite(delta):
        discard_grads(probe.done)
        return StepOutput.skip(probe.clean)
    adv = task_loss(batch.forward(batch.embed() + delta), batch.labels)
    if not is_finite(adv):
        discard_grads(probe.done)
        return StepOutput.skip(probe.clean)
    backward(adv * wa)
    total = wc * probe.clean.detach() + wa * adv.detach()
    return StepOutput(total, probe.clean.detach(), adv.detach(), mean_l2(delta))
