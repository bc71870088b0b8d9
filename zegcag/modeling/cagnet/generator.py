"""Feature generator G: class embedding + latent code -> a fake visual feature, per pixel.

Shapes: B batch, D class-embedding dim, C feature dim (= latent dim), K classes, H0 first hidden width,
h/w map size.
``embeddings: (B, D, h, w)``, ``z: (B, C, h, w)`` -> ``fake: (B, C, h, w)``; or, cheaper,
``class_embeddings: (K, D)`` + ``labels: (B, h, w)`` + ``z`` (the first layer is applied once per class).
All layers are 1x1 convs, so every pixel is generated independently (a per-pixel MLP, paper Sec. 3.3).

The first layer acts on the concatenation [embedding, z], written as two convs whose outputs are summed.
Class embeddings are unit-norm rows (entries ~ 1/sqrt(D)) while z ~ N(0, 1) has unit entries, so the
embedding is scaled by sqrt(D) before that layer: otherwise the class would carry ~1/C of the first layer's
variance at initialisation and G would start (and, with small learning rates, stay) nearly class-blind.
"""
from __future__ import annotations

import math
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
        self.embed_scale = math.sqrt(embed_dim)
        widths = [*hidden, feature_dim]
        # first layer on [embedding, z]: the embedding part has no bias (zero embedding -> zero contribution)
        self.embed_in = nn.Conv2d(embed_dim, widths[0], 1, bias=False)
        self.latent_in = nn.Conv2d(latent_dim, widths[0], 1)
        layers: list[nn.Module] = []
        for i, p in enumerate(dropout):
            layers += [nn.LeakyReLU(0.2, inplace=True), nn.Dropout(p), nn.Conv2d(widths[i], widths[i + 1], 1)]
        if sigmoid_output:
            layers.append(nn.Sigmoid())
        self.layers = nn.Sequential(*layers)
        for m in [self.embed_in, self.latent_in, *self.layers]:
            if isinstance(m, nn.Conv2d):
                # fan-in of the first layer is that of the whole concatenation
                fan_in = embed_dim + latent_dim if m in (self.embed_in, self.latent_in) else m.in_channels
                nn.init.normal_(m.weight, std=math.sqrt(2.0 / (1 + 0.2**2) / fan_in))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def project_classes(self, class_embeddings: torch.Tensor) -> torch.Tensor:
        """``class_embeddings: (K, D)`` -> their first-layer contributions ``(K, H0)``."""
        if class_embeddings.shape[1] != self.embed_dim:
            raise ValueError(
                f"the generator was built for {self.embed_dim}-d class embeddings, got {class_embeddings.shape[1]}-d "
                "(MODEL.CAGNET.EMBED_DIM against MODEL.CLASS_EMBED.PROVIDER)"
            )
        return (class_embeddings * self.embed_scale) @ self.embed_in.weight.flatten(1).t()

    def forward(self, embeddings: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``embeddings: (B, D, h, w)`` (zero where no class), ``z: (B, C, h, w)`` -> ``(B, C, h, w)``."""
        if embeddings.shape[1] != self.embed_dim:
            raise ValueError(
                f"the generator was built for {self.embed_dim}-d class embeddings, got {embeddings.shape[1]}-d "
                "(MODEL.CAGNET.EMBED_DIM against MODEL.CLASS_EMBED.PROVIDER)"
            )
        return self.layers(self.embed_in(embeddings * self.embed_scale) + self.latent_in(z))

    def forward_labels(self, class_embeddings: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                       z: torch.Tensor) -> torch.Tensor:
        """Same as ``forward`` on the embedding map of ``labels: (B, h, w)`` (zero where ``valid`` is False),
        with the first layer applied to the K class embeddings only."""
        proj = self.project_classes(class_embeddings)  # (K, H0)
        rows = proj[torch.where(valid, labels, torch.zeros_like(labels))] * valid[..., None]  # (B, h, w, H0)
        return self.layers(rows.permute(0, 3, 1, 2) + self.latent_in(z))
