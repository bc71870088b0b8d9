"""Classifier C: a shared first layer (also the discriminator's) and a per-class 1x1 head.

Shapes: B batch, C feature dim, H hidden width, K classes (seen and unseen), h/w map size.
``features: (B, C, h, w)`` -> ``trunk: (B, H, h, w)`` -> ``logits: (B, K, h, w)``.
Pixel-wise CaGNet uses a 1x1 first layer; the patch-wise variant a kxk one (k = patch size), so a
logit at a patch centre sees exactly the k x k pixels of that patch (journal version, Sec. 3.4).
"""
from __future__ import annotations

import torch
from torch import nn


class FeatureClassifier(nn.Module):
    def __init__(self, feature_dim: int, hidden: int, num_classes: int, kernel_size: int = 1,
                 dropout: float = 0.5, init_std: float = 0.01) -> None:
        """
        Args:
            kernel_size: first-layer kernel (odd): 1 pixel-wise, the patch size patch-wise.
            dropout: after the shared first layer (it applies to the discriminator too).
            init_std: std of the Gaussian initial weights (official code 0.01); 0 keeps PyTorch's default init.
        """
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"MODEL.CAGNET.PATCH_SIZE must be a positive odd number, got {kernel_size}")
        self.trunk = nn.Sequential(
            nn.Conv2d(feature_dim, hidden, kernel_size, padding=kernel_size // 2),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
        )
        self.head = nn.Conv2d(hidden, num_classes, 1)
        self.num_classes, self.kernel_size = num_classes, kernel_size
        if init_std > 0:
            for m in (self.trunk[0], self.head):
                nn.init.normal_(m.weight, std=init_std)
                nn.init.zeros_(m.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(features))
