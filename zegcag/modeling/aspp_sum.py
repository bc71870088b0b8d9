"""DeepLab-v2 ASPP: parallel dilated 3x3 convs whose outputs are summed (used by SPNet and CaGNet).

``x: (B, C_in, h, w)`` -> ``(B, C_out, h, w)``. With no dilations it is a single 1x1 conv.
The module is linear, so a following projection ``P: (K, C_out)`` folds into its weights:
``forward(x, P)`` returns ``(B, K, h, w)`` without materialising the C_out-channel map (C_out = 600
word-vector dims against K ~ 20 classes makes this several times faster).
PyTorch's default conv init is kept: DeepLab-v2's N(0, 0.01) made the projection into the fixed
embedding space learn several times slower on the synthetic benchmark (loss 0.58 vs 0.14 after 200 steps).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class SummedASPP(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, dilations: Sequence[int] = ()) -> None:
        super().__init__()
        if dilations:
            self.branches = nn.ModuleList(
                nn.Conv2d(in_channels, out_channels, 3, padding=d, dilation=d) for d in dilations
            )
        else:
            self.branches = nn.ModuleList([nn.Conv2d(in_channels, out_channels, 1)])

    def forward(self, x: torch.Tensor, projection: torch.Tensor | None = None) -> torch.Tensor:
        if projection is None:
            return sum(branch(x) for branch in self.branches)
        out = 0
        for conv in self.branches:
            weight = torch.einsum("kd,dcij->kcij", projection, conv.weight)
            out = out + F.conv2d(x, weight, projection @ conv.bias, padding=conv.padding, dilation=conv.dilation)
        return out
