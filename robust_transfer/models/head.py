"""The classification head put on top of any encoder; replaced between stages."""

from __future__ import annotations

import torch
from torch import nn


class ClassificationHead(nn.Module):
    """Pool the encoder's hidden states, then dropout -> dense -> tanh -> dropout -> logits.

    The same shape as RoBERTa's classification head, with a choice of pooling: `cls` takes the
    first token, `mean` averages the real (unpadded) tokens.
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.0, pooling: str = "cls"):
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    @property
    def num_labels(self) -> int:
        return self.out_proj.out_features

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.pool(hidden, attention_mask))
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)
