"""Embedding-space adversarial regularizers behind one interface, and an eval-time attack.

    reg = build_regularizer("pgd", {"epsilon": 1.0, "steps": 3})
    out = reg.step(AdversarialBatch(embed, forward, mask, labels), backward)

One regularizer per module; each registers itself under its config name:
none, fgsm, pgd, freelb, smart, r3f, random.
"""

# Importing the modules registers their regularizers.
from robust_transfer.adversarial import fgsm, freelb, none, pgd, r3f, random_noise, smart  # noqa: F401
from robust_transfer.adversarial.attack import embedding_pgd_attack
from robust_transfer.adversarial.base import (
    REGULARIZERS,
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    build_regularizer,
    register,
)

__all__ = [
    "REGULARIZERS",
    "AdversarialBatch",
    "Cost",
    "Regularizer",
    "StepOutput",
    "build_regularizer",
    "embedding_pgd_attack",
    "register",
]
