"""Embedding-space evaluation attacks applied to a batch.

An attacked split evaluates the clean data; at each test batch the module asks the split for its
logits and the split's `Attack` perturbs the word embeddings before the forward. The attacks'
parameters and implementations are the registry's (kind "attack": `registry/attacks.py`, the
PGD and Gaussian-noise code in `adversarial/attack.py`); torch is imported only when an attack
runs, so that checking parameters (config validation) stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from robust_transfer import registry

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Attack:
    """One embedding-space attack with its typed, checked parameters (defaults filled in)."""

    family: str
    params: Any  # the registry's parameter dataclass for `family`

    @classmethod
    def build(cls, family: str, params: Any) -> Attack:
        return cls(family, registry.spec("attack", family, params))

    def logits(self, module, batch: dict, seed: int) -> torch.Tensor:
        """Logits of `module` on `batch` under the attack; no parameter gradient is accumulated.

        `module` is anything with `adversarial_batch(batch)` (the LightningModule): the attack
        sees the batch only as embeddings in, logits out.
        """
        import torch

        attacker = registry.build("attack", self.family, self.params)
        adv = module.adversarial_batch(batch)
        generator = torch.Generator(device=batch["input_ids"].device).manual_seed(seed)
        with torch.enable_grad():
            delta = attacker.delta(adv, generator)
        with torch.no_grad():
            return adv.forward(adv.embed() + delta.detach())
