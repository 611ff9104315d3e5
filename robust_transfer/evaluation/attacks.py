"""Embedding-space evaluation attacks: their parameters and their application to a batch.

An attacked split evaluates the clean data; at each test batch the module asks the split for its
logits and the split's `Attack` perturbs the word embeddings (PGD from
`adversarial/attack.py`, or Gaussian noise) before the forward. Torch is imported only when an
attack runs, so that checking parameters (config validation) stays light.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ATTACK_PARAMS: dict[str, dict[str, Any]] = {
    # PGD in the word-embedding space (L2 radius per example over real tokens, or Linf)
    # (random_init: start uniformly in the ball; restarts: robust accuracy is the minimum over them)
    "embedding_pgd": {"epsilon": 1.0, "alpha": 0.5, "steps": 5, "norm": "l2", "random_init": True, "restarts": 1},
    # Gaussian noise of standard deviation sigma on every real token's embedding
    "embedding_noise": {"sigma": 0.1},
}


def check_attack_params(family: str, params: dict[str, Any]) -> dict[str, Any]:
    """The attack's parameters with defaults filled in; a ValueError names any bad key or value."""
    defaults = ATTACK_PARAMS[family]
    for key, value in params.items():
        if key not in defaults:
            near = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise ValueError(f"unknown parameter '{key}' for {family}.{hint} Valid: {', '.join(defaults)}.")
        if key == "norm" and value not in ("l2", "linf"):
            raise ValueError(f"norm must be 'l2' or 'linf', got {value!r}")
        if key in ("epsilon", "alpha", "sigma") and not (isinstance(value, int | float) and value >= 0):
            raise ValueError(f"{key} must be a number >= 0, got {value!r}")
        if key == "steps" and not (isinstance(value, int) and value >= 0):
            raise ValueError(f"steps must be an integer >= 0, got {value!r}")
        if key == "restarts" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ValueError(f"restarts must be an integer >= 1, got {value!r}")
        if key == "random_init" and not isinstance(value, bool):
            raise ValueError(f"random_init must be true or false, got {value!r}")
    merged = {**defaults, **params}
    if merged.get("restarts", 1) > 1 and not merged.get("random_init", True):
        raise ValueError("restarts > 1 needs random_init: true (every restart from zero is the same attack)")
    return merged


def is_attack(family: str) -> bool:
    """Whether `family` names an embedding-space attack (else a text perturbation)."""
    return family in ATTACK_PARAMS


@dataclass(frozen=True)
class Attack:
    """One embedding-space attack with its checked parameters (defaults filled in)."""

    family: str
    params: dict[str, Any]

    @classmethod
    def build(cls, family: str, params: dict[str, Any]) -> Attack:
        return cls(family, check_attack_params(family, params))

    def logits(self, module, batch: dict, seed: int) -> torch.Tensor:
        """Logits of `module` on `batch` under the attack; no parameter gradient is accumulated.

        `module` is anything with `adversarial_batch(batch)` (the LightningModule): the attack
        sees the batch only as embeddings in, logits out.
        """
        import torch

        from robust_transfer.adversarial.attack import embedding_pgd_attack

        adv = module.adversarial_batch(batch)
        generator = torch.Generator(device=batch["input_ids"].device).manual_seed(seed)
        with torch.enable_grad():
            if self.family == "embedding_pgd":
                delta = embedding_pgd_attack(adv, generator=generator, **self.params)
            else:
                embeds = adv.embed()
                noise = torch.randn(embeds.shape, generator=generator, device=embeds.device)
                delta = noise * self.params["sigma"] * adv.mask.unsqueeze(-1).to(embeds.dtype)
        with torch.no_grad():
            return adv.forward(adv.embed() + delta.detach())
