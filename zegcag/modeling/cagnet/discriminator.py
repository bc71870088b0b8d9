"""Discriminator D: a 1x1 real/fake head on the classifier's shared first layer.

Shapes: B batch, H hidden width of the shared layer, h/w map size.
``trunk: (B, H, h, w)`` (``FeatureClassifier.trunk(features)``) -> ``scores: (B, 1, h, w)`` (raw, no sigmoid).
Sharing the first layer with C ties what makes a feature "real" to what makes it classifiable (paper Sec. 3.3).
"""
from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(hidden, 1, 1)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, trunk: torch.Tensor) -> torch.Tensor:
        return self.head(trunk)
