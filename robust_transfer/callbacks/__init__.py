"""Lightning callbacks: per-language degradation logging and RNG state in checkpoints."""

from robust_transfer.callbacks.degradation import DegradationLogger
from robust_transfer.callbacks.rng import RngState

__all__ = ["DegradationLogger", "RngState"]
