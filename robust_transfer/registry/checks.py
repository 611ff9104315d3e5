"""Range checks shared by the parameter dataclasses; each ValueError names the key and the valid range.

Torch-free on purpose: config validation runs them without loading torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NORMS = ("l2", "linf")
FLOAT32_MAX = (2 - 2**-23) * 2.0**127  # torch.finfo(torch.float32).max, 3.4e38
# The largest perturbation size we accept: a perturbation (or a step) this large has a squared
# norm, and the encoder's LayerNorm a variance, that overflow float32; beyond it a run would
# either train on inf/NaN or, through an overflowed norm, on a zero perturbation.
MAX_BUDGET = FLOAT32_MAX**0.5  # 1.84e19


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def check_nonnegative(**values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0; got {value!r}")


def check_fraction(name: str, value: Any, high: str = "]") -> None:
    """A number in [0, 1] (high="]") or [0, 1) (high=")")."""
    ok = not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= 1
    if not ok or (high == ")" and value == 1):
        raise ValueError(f"{name} must be in [0, 1{high}; got {value!r}")


def check_budget(**values: Any) -> None:
    """A perturbation size: a finite number in [0, MAX_BUDGET] (see `MAX_BUDGET` for why)."""
    check_nonnegative(**values)
    for name, value in values.items():
        if not value <= MAX_BUDGET:
            raise ValueError(
                f"{name} = {value:g} is too large to represent: a perturbation that size "
                f"overflows float32 (its squared norm exceeds 3.4e38), so it would train on "
                f"inf/NaN or a zero perturbation. Use {name} <= {MAX_BUDGET:.3g}; embedding "
                f"entries are of order 1, so useful budgets are far below 1e3."
            )


def check_steps(name: str, value: Any, minimum: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


def combine_weights(clean_weight: float, adv_weight: float) -> tuple[float, float]:
    """(clean, adv) weights normalised to sum to 1, so epsilon 0 reproduces the clean loss."""
    check_nonnegative(clean_weight=clean_weight, adv_weight=adv_weight)
    total = clean_weight + adv_weight
    if total <= 0:
        raise ValueError("clean_weight + adv_weight must be > 0")
    return clean_weight / total, adv_weight / total
