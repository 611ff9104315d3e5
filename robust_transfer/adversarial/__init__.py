"""Embedding-space adversarial regularizers behind one interface, and the eval-time attacks.

    reg = build_regularizer("pgd", {"epsilon": 1.0, "steps": 3})
    out = reg.step(AdversarialBatch(embed, forward, mask, labels), backward)

One regularizer per module: none, fgsm, pgd, freelb, smart, r3f, random. Their names,
parameters and defaults are registered in robust_transfer/registry/regularizers.py (torch-free,
so a config is checked without importing this package); `build_regularizer` is the registry's
`build("regularizer", ...)`.
"""

from robust_transfer.adversarial.attack import embedding_pgd_attack
from robust_transfer.adversarial.base import (
    AdversarialBatch,
    Cost,
    Regularizer,
    StepOutput,
    build_regularizer,
)

__all__ = [
    "AdversarialBatch",
    "Cost",
    "Regularizer",
    "StepOutput",
    "build_regularizer",
    "embedding_pgd_attack",
]
