"""The evaluation-time embedding attacks' parameters (`eval.perturbations` entries whose
family is an attack); implemented in robust_transfer/adversarial/attack.py."""

from __future__ import annotations

from dataclasses import dataclass

from robust_transfer.registry.checks import NORMS, check_budget, check_choice, check_steps
from robust_transfer.registry.core import register

_AT = "robust_transfer.adversarial.attack"


@register("attack", "embedding_pgd", f"{_AT}:EmbeddingPGD")
@dataclass
class EmbeddingPGDParams:
    """PGD in the word-embedding space (L2 radius per example over real tokens, or Linf)."""

    epsilon: float = 1.0  # radius of the ball
    alpha: float = 0.5  # ascent step size
    steps: int = 5  # ascent steps (0: no attack)
    norm: str = "l2"  # l2 or linf
    random_init: bool = True  # start uniformly in the ball (else at zero)
    restarts: int = 1  # random starts; robust accuracy is the minimum over them, per example

    def __post_init__(self):
        check_budget(epsilon=self.epsilon, alpha=self.alpha)
        check_steps("steps", self.steps)
        check_choice("norm", self.norm, NORMS)
        if not isinstance(self.random_init, bool):
            raise ValueError(f"random_init must be true or false; got {self.random_init!r}")
        check_steps("restarts", self.restarts, minimum=1)
        if self.restarts > 1 and not self.random_init:
            raise ValueError("restarts > 1 needs random_init: true (every restart from zero is the same attack)")


@register("attack", "embedding_noise", f"{_AT}:EmbeddingNoise")
@dataclass
class EmbeddingNoiseParams:
    """Gaussian noise on every real token's word embedding."""

    sigma: float = 0.1  # standard deviation per entry

    def __post_init__(self):
        check_budget(sigma=self.sigma)
