"""Evaluation-time attacks against a trained model: PGD in word-embedding space (`embedding_pgd`)
and Gaussian embedding noise (`embedding_noise`), registered with their parameters in
robust_transfer/registry/attacks.py and built by `registry.build("attack", ...)`.

The attack maximises the summed cross-entropy of the batch within the ball of radius
epsilon (per-example L2 over real tokens, or elementwise Linf), padding never perturbed.
With `restarts` R > 1 it runs R random starts and keeps, per example, the perturbation that
misclassifies it (else the one with the highest loss), so robust accuracy is the minimum over
restarts, example by example (Madry et al.'s practice). It differentiates wrt the perturbation
only (`torch.autograd.grad`), so no parameter gradient is accumulated; put the model in eval mode first. It needs autograd, so it
cannot run under `torch.inference_mode()` (Lightning's default for validate/test: build
the Trainer with `inference_mode=False`); it enables grad itself inside `torch.no_grad()`.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor

from robust_transfer.adversarial.base import (
    NORMS,
    AdversarialBatch,
    direction,
    mask3,
    project,
    random_in_ball,
)
from robust_transfer.registry.attacks import EmbeddingNoiseParams, EmbeddingPGDParams


class EmbeddingPGD:
    """`embedding_pgd`: `embedding_pgd_attack` with its registered parameters."""

    def __init__(self, params: EmbeddingPGDParams):
        self.params = params

    def delta(self, batch: AdversarialBatch, generator: torch.Generator) -> Tensor:
        """The attack's perturbation of `batch`'s word embeddings (call under enable_grad)."""
        return embedding_pgd_attack(batch, generator=generator, **dataclasses.asdict(self.params))


class EmbeddingNoise:
    """`embedding_noise`: Gaussian noise of std `sigma` on every real token's word embedding."""

    def __init__(self, params: EmbeddingNoiseParams):
        self.params = params

    def delta(self, batch: AdversarialBatch, generator: torch.Generator) -> Tensor:
        embeds = batch.embed()
        noise = torch.randn(embeds.shape, generator=generator, device=embeds.device)
        return noise * self.params.sigma * batch.mask.unsqueeze(-1).to(embeds.dtype)


class _Sampler:
    """Just the RNG part of a Regularizer, for `random_in_ball`."""

    def __init__(self, generator: torch.Generator | None):
        self.generator = generator

    def _draw(self, fn, like: Tensor) -> Tensor:
        g = self.generator
        if g is None:
            return fn(like.shape, device=like.device, dtype=like.dtype)
        return fn(like.shape, generator=g, device=g.device, dtype=like.dtype).to(like.device)

    def randn(self, like: Tensor) -> Tensor:
        return self._draw(torch.randn, like)

    def rand(self, like: Tensor) -> Tensor:
        return self._draw(torch.rand, like)


def embedding_pgd_attack(
    batch: AdversarialBatch,
    epsilon: float,
    alpha: float,
    steps: int,
    norm: str = "l2",
    *,
    random_init: bool = True,
    restarts: int = 1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A detached perturbation delta (B, T, H) that raises the task loss; evaluate forward(embed() + delta).

    Random start uniform in the ball (zero with random_init=False), then `steps` ascent steps of size alpha (normalised gradient for l2, sign for
    linf), each projected back onto the ball and masked. `seed` builds a generator on the
    embeddings' device when `generator` is not given; with neither, torch's global RNG.
    With epsilon 0 or steps 0 the result is all zeros. `restarts` (>= 1; > 1 needs
    random_init) repeats the attack from new random starts, keeping each example's strongest.
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}")
    if epsilon < 0 or alpha < 0 or steps < 0:
        raise ValueError("epsilon, alpha and steps must be >= 0")
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be an integer >= 1; got {restarts!r}")
    if restarts > 1 and not random_init:
        raise ValueError("restarts > 1 needs random_init: every restart from zero is the same attack")
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "embedding_pgd_attack needs autograd but runs under torch.inference_mode(); "
            "build the Lightning Trainer with inference_mode=False"
        )
    with torch.enable_grad():
        embeds = batch.embed().detach()
        mask = mask3(batch, embeds)
        if epsilon == 0 or steps == 0:
            return torch.zeros_like(embeds)
        if generator is None and seed is not None:
            generator = torch.Generator(device=embeds.device).manual_seed(seed)
        sampler = _Sampler(generator)
        best = best_wrong = best_loss = None
        for _ in range(restarts):
            delta = _attack_once(batch, embeds, mask, epsilon, alpha, steps, norm, random_init, sampler)
            if restarts == 1:
                return delta
            with torch.no_grad():
                logits = batch.forward(embeds + delta).float()
                loss = F.cross_entropy(logits, batch.labels, reduction="none")
                wrong = logits.argmax(-1) != batch.labels
            if best is None:
                best, best_wrong, best_loss = delta, wrong, loss
                continue
            take = (wrong & ~best_wrong) | ((wrong == best_wrong) & (loss > best_loss))
            best = torch.where(take.view(-1, 1, 1), delta, best)
            best_wrong, best_loss = best_wrong | wrong, torch.where(take, loss, best_loss)
    return best.detach()


def _attack_once(batch, embeds, mask, epsilon, alpha, steps, norm, random_init, sampler) -> Tensor:
    if random_init:
        delta = random_in_ball(sampler, embeds, mask, epsilon, norm)
    else:
        delta = torch.zeros_like(embeds)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(batch.forward(embeds + delta).float(), batch.labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        delta = project(delta.detach() + alpha * direction(grad * mask, norm), epsilon, norm) * mask
    return delta.detach()
