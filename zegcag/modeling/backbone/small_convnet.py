"""A few 3x3 conv layers: the CPU-sized backbone of the synthetic benchmark.

Shapes: B batch, H/W input size, s output stride (product of the strides), C the last width.
``images: (B, 3, H, W)`` -> ``{"feat": (B, C, H/s, W/s)}``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn
from torch.nn import functional as F


class SmallConvNet(Backbone):
    """Stack of conv3x3 + norm + ReLU layers with per-layer stride and dilation."""

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        dilations: Sequence[int],
        norm: str = "BN",
    ) -> None:
        super().__init__()
        if not len(channels) == len(strides) == len(dilations):
            raise ValueError(
                "MODEL.SMALL_CONVNET.CHANNELS, STRIDES and DILATIONS must have the same length, got "
                f"{len(channels)}, {len(strides)}, {len(dilations)}"
            )
        layers = []
        for out_channels, stride, dilation in zip(channels, strides, dilations):
            conv = Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation,
                          bias=not norm, norm=get_norm(norm, out_channels), activation=F.relu)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            layers.append(conv)
            in_channels = out_channels
        self.layers = nn.Sequential(*layers)
        self._out_channels = in_channels
        self._stride = int(torch.tensor(list(strides)).prod())

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"feat": self.layers(images)}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"feat": ShapeSpec(channels=self._out_channels, stride=self._stride)}


@BACKBONE_REGISTRY.register()
def build_small_convnet_backbone(cfg, input_shape: ShapeSpec) -> SmallConvNet:
    return SmallConvNet(
        input_shape.channels,
        cfg.MODEL.SMALL_CONVNET.CHANNELS,
        cfg.MODEL.SMALL_CONVNET.STRIDES,
        cfg.MODEL.SMALL_CONVNET.DILATIONS,
        cfg.MODEL.SMALL_CONVNET.NORM,
    )
