"""Feature generator G: class embedding + latent code -> a fake visual feature, per pixel.

Shapes: B batch, D class-embedding dim, C feature dim, h/w map size.
``embeddings: (B, D, h, w)``, ``z: (B, C, h, w)`` -> ``fake: (B, C, h, w)``.
All layers are 1x1 convs, so every pixel is generated independently (a per-pixel MLP, paper Sec. 3.3).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Generator(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        latent_dim: int,
        feature_dim: int,
        hidden: Sequence[int] = (512, 512),
        dropout: Sequence[float] = (0.1, 0.1),
        sigmoid_output: bool = False,
    ) -> None:
        """
        Args:
            embed_dim: D; latent_dim: channels of z; feature_dim: C, channels of the output.
            hidden: widths of the hidden 1x1 convs (each followed by LeakyReLU 0.2 and dropout).
            dropout: one dropout probability per hidden layer.
            sigmoid_output: end with a sigmoid (for features that live in (0, 1), the official code's variant).
        """
        super().__init__()
        if len(dropout) != len(hidden):
            raise ValueError(
                f"MODEL.CAGNET.GENERATOR_DROPOUT has {len(dropout)} values for {len(hidden)} hidden layers "
                "(MODEL.CAGNET.GENERATOR_HIDDEN); give one per layer"
            )
        self.embed_dim, self.latent_dim = embed_dim, latent_dim
        layers: list[nn.Module] = []
        in_channels = embed_dim + latent_dim
        for width, p in zip(hidden, dropout):
            layers += [nn.Conv2d(in_channels, width, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(p)]
            in_channels = width
        layers.append(nn.Conv2d(in_channels, feature_dim, 1))
        if sigmoid_output:
            layers.append(nn.Sigmoid())
        self.layers = nn.Sequential(*layers)
        for m in self.layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)

    def forward(self, embeddings: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if embeddings.shape[1] != self.embed_dim:
            raise ValueError(
                f"the generator was built for {self.embed_dim}-d class embeddings, got {embeddings.shape[1]}-d "
                "(MODEL.CAGNET.EMBED_DIM against MODEL.CLASS_EMBED.PROVIDER)"
            )
        return self.layers(torch.cat([embeddings, z], dim=1))
