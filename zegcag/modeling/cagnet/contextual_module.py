"""CaGNet's Contextual Module: pixel-wise contextual latent code and contextual feature.

Shapes: B batch, C feature dim (l), M context width, h/w feature map size.
``features F: (B, C, h, w)`` -> ``x: (B, C, h, w)``, ``z, mu, logvar: (B, C, h, w)``.

Serial dilated 3x3 convs (dilations 1, 2, 5 by default: receptive fields 3/7/17) give one context map
per scale; a context selector weighs each scale per pixel; a 1x1 conv maps the weighted contexts to
the mean and log-variance of the latent code z (paper Sec. 3.2). Training samples
``z = mu + eps * sigma``; inference uses ``z = mu``. The contextual feature is
``X = F + F * sigmoid(z)`` (paper Eq. 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

LOGVAR_LIMIT = 10.0  # |log-variance| bound: sigma within [e^-5, e^5]


@dataclass
class ContextOutput:
    """Output of the Contextual Module; every tensor is (B, C, h, w)."""

    x: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


class ContextualModule(nn.Module):
    def __init__(
        self,
        feature_dim: int,
        context_channels: int,
        dilations: Sequence[int] = (1, 2, 5),
        sigmoid_features: bool = False,
    ) -> None:
        """
        Args:
            feature_dim: C, channels of F, of the latent code and of the output feature.
            context_channels: M, width of each dilated conv (paper: C; official code: 256).
            dilations: dilations of the serial 3x3 convs, one context scale each.
            sigmoid_features: the official code's variant: sigmoid on the input F and on the output X.
        """
        super().__init__()
        if not dilations:
            raise ValueError("MODEL.CAGNET.CONTEXT_DILATIONS must list at least one dilation")
        convs, in_channels = [], feature_dim
        for d in dilations:
            convs.append(nn.Conv2d(in_channels, context_channels, 3, padding=d, dilation=d))
            in_channels = context_channels
        self.context_convs = nn.ModuleList(convs)
        num_scales = len(dilations)
        self.selector = nn.Conv2d(num_scales * context_channels, num_scales, 3, padding=1)
        self.latent = nn.Conv2d(num_scales * context_channels, 2 * feature_dim, 1)
        self.sigmoid_features = sigmoid_features
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
                nn.init.zeros_(m.bias)
        # start close to the prior N(0, 1): small mu, log-variance near 0
        nn.init.normal_(self.latent.weight, std=1e-3)

    def forward(self, features: torch.Tensor, sample: bool | None = None) -> ContextOutput:
        """``features: (B, C, h, w)``; ``sample`` (default: ``self.training``) draws z, else z = mu."""
        if sample is None:
            sample = self.training
        f = torch.sigmoid(features) if self.sigmoid_features else features
        contexts, h = [], f
        for conv in self.context_convs:
            h = torch.relu(conv(h))
            contexts.append(h)
        stacked = torch.cat(contexts, dim=1)
        weights = torch.sigmoid(self.selector(stacked))  # (B, S, h, w): one weight per scale and pixel
        selected = torch.cat([c * weights[:, i : i + 1] for i, c in enumerate(contexts)], dim=1)
        mu, logvar = self.latent(selected).chunk(2, dim=1)
        # exp(logvar) in the KL term and in sigma overflows float32 (and float16 far sooner) for large inputs
        logvar = logvar.clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        x = f + f * torch.sigmoid(z)
        if self.sigmoid_features:
            x = torch.sigmoid(x)
        return ContextOutput(x=x, z=z, mu=mu, logvar=logvar)
