"""PixelCNN over k x k label patches: the prior that patch-wise CaGNet samples category patches from.

Shapes: N patches, k patch size, D class-embedding dim, K classes, B/h/w a label map.
``embeddings of a label patch: (N, D, k, k)`` -> ``logits: (N, K, k, k)``, where the logits at a
position depend only on the positions before it in raster order (a type-A masked conv, then type-B
ones: van den Oord et al., 2016). The input is the class embedding of each pixel, never its own label:
the official code adds an unmasked own-label term that leaks the target, which we do not reproduce.
Trained with cross-entropy on k x k windows of seen training label maps (windows with an ignored
pixel are dropped, so unseen classes never appear).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MaskedConv2d(nn.Conv2d):
    """Square conv whose kernel sees only raster-earlier positions (type "A") or also the centre ("B")."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask_type: str) -> None:
        if mask_type not in ("A", "B"):
            raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        c = kernel_size // 2
        mask = torch.ones(kernel_size, kernel_size)
        mask[c, c + (mask_type == "B"):] = 0
        mask[c + 1:] = 0
        self.register_buffer("mask", mask[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class PixelCNN(nn.Module):
    def __init__(self, embed_dim: int, num_classes: int, channels: int = 64, num_layers: int = 4,
                 kernel_size: int = 3) -> None:
        """``num_layers`` masked convs (the first of type A) with ReLU, then a 1x1 conv to K logits."""
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MODEL.CAGNET.PIXELCNN.LAYERS must be >= 1, got {num_layers}")
        layers: list[nn.Module] = [MaskedConv2d(embed_dim, channels, kernel_size, "A"), nn.ReLU(inplace=True)]
        for _ in range(num_layers - 1):
            layers += [MaskedConv2d(channels, channels, kernel_size, "B"), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, num_classes, 1))
        self.layers = nn.Sequential(*layers)
        self.num_classes = num_classes

    def forward(self, patch_embeddings: torch.Tensor) -> torch.Tensor:
        return self.layers(patch_embeddings)

    def loss(self, patches: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of ``patches: (N, k, k)`` class ids (all valid) under the model."""
        logits = self(embed_patches(patches, class_embeddings))
        return F.cross_entropy(logits, patches)

    @torch.no_grad()
    def complete(self, patches: torch.Tensor, start: int, class_embeddings: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Sample raster positions ``start..k*k-1`` of ``patches: (N, k, k)`` given the earlier ones."""
        patches = patches.clone()
        k = patches.shape[-1]
        for pos in range(start, k * k):
            row, col = divmod(pos, k)
            # later positions still hold placeholders; the masks make the logits at pos ignore them
            logits = self(embed_patches(patches, class_embeddings))[:, :, row, col]
            probs = torch.softmax(logits.float(), dim=1)
            patches[:, row, col] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return patches


def embed_patches(patches: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
    """``patches: (N, k, k)`` class ids, ``class_embeddings: (K, D)`` -> ``(N, D, k, k)``."""
    return class_embeddings[patches].permute(0, 3, 1, 2)


def extract_label_patches(labels: torch.Tensor, k: int, ignore_label: int) -> torch.Tensor:
    """Every k x k window of ``labels: (B, h, w)`` with no ignored pixel -> ``(N, k, k)`` class ids."""
    if labels.shape[-2] < k or labels.shape[-1] < k:
        return labels.new_zeros((0, k, k))
    windows = labels.unfold(1, k, 1).unfold(2, k, 1).reshape(-1, k, k)
    return windows[(windows != ignore_label).flatten(1).all(dim=1)]
