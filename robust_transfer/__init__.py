"""robust-transfer: adversarial intermediate-task training for robust zero-shot cross-lingual transfer."""

__version__ = "0.1.0"
