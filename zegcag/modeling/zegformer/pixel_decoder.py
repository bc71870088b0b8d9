"""FPN-style pixel decoder of ZegFormer (MaskFormer's base pixel decoder): per-pixel mask features.

Shapes: B batch, C_i channels of backbone feature i, s_f the finest input stride, E conv dim, M mask dim.
``{name: (B, C_i, H/s_i, W/s_i)}`` -> ``mask_features: (B, M, H/s_f, W/s_f)``.
The coarsest feature goes through a 3x3 conv; every finer one adds a 1x1 lateral conv of itself to
the nearest-upsampled coarser map, followed by a 3x3 conv; a final 3x3 conv (bias, no norm) outputs M channels.
"""
from __future__ import annotations

from typing import Mapping

import fvcore.nn.weight_init as weight_init
import torch
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from torch import nn
from torch.nn import functional as F

__all__ = ["FPNPixelDecoder"]


class FPNPixelDecoder(nn.Module):
    """``lateral_convs[i]`` / ``output_convs[i]`` belong to ``in_features[i]`` (ordered fine to coarse);
    the coarsest feature has no lateral conv."""

    def __init__(self, input_shape: Mapping[str, ShapeSpec], *, conv_dim: int, mask_dim: int, norm: str = "GN") -> None:
        """
        Args:
            input_shape: backbone features used, with their channels and strides.
            conv_dim: channels of the intermediate maps.
            mask_dim: channels of the output mask features.
            norm: Detectron2 norm name of every conv but the last ("" for none, then convs have a bias).
        """
        super().__init__()
        if not input_shape:
            raise ValueError("FPNPixelDecoder needs at least one input feature (MODEL.ZEGFORMER.IN_FEATURES)")
        ordered = sorted(input_shape.items(), key=lambda item: item[1].stride)
        self.in_features = [name for name, _ in ordered]
        use_bias = norm == ""
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for i, (_, shape) in enumerate(ordered):
            coarsest = i == len(ordered) - 1
            if not coarsest:
                lateral = Conv2d(shape.channels, conv_dim, 1, bias=use_bias, norm=get_norm(norm, conv_dim))
                weight_init.c2_xavier_fill(lateral)
                self.lateral_convs.append(lateral)
            output = Conv2d(shape.channels if coarsest else conv_dim, conv_dim, 3, padding=1, bias=use_bias,
                            norm=get_norm(norm, conv_dim), activation=F.relu)
            weight_init.c2_xavier_fill(output)
            self.output_convs.append(output)
        self.mask_features = Conv2d(conv_dim, mask_dim, 3, padding=1)
        weight_init.c2_xavier_fill(self.mask_features)
        self.mask_dim = mask_dim
        self.stride = ordered[0][1].stride

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Backbone features -> ``(B, M, H/s_f, W/s_f)``."""
        y = self.output_convs[-1](features[self.in_features[-1]])
        for i in range(len(self.in_features) - 2, -1, -1):
            lateral = self.lateral_convs[i](features[self.in_features[i]])
            y = self.output_convs[i](lateral + F.interpolate(y, size=lateral.shape[-2:], mode="nearest"))
        return self.mask_features(y)
