"""DETR-style query decoder of ZegFormer: learned queries attend to one backbone feature map.

Shapes: B batch, C_in input channels, h/w feature size, L decoder layers, Q queries, E hidden dim.
``feature: (B, C_in, h, w)`` -> ``queries: (L, B, Q, E)``: the output of every layer after the shared
final LayerNorm (deep supervision). No encoder layers (ZegFormer uses 0); the target starts at zero and
the learned query embedding is added to queries as a positional term (DETR). With pre-norm layers the memory
is layer-normalised first (DETR's final encoder norm, kept with zero encoder layers as in the official code).
"""
from __future__ import annotations

import math

import fvcore.nn.weight_init as weight_init
import torch
from detectron2.layers import Conv2d
from torch import nn
from torch.nn import functional as F

__all__ = ["QueryTransformerDecoder", "sine_position_encoding"]


def sine_position_encoding(feature: torch.Tensor, num_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    """Normalised 2D sine/cosine encoding (DETR), scale 2*pi: ``(B, C, h, w)`` -> ``(B, 2*num_feats, h, w)``.

    Channels are [y features, x features]; within each, pairs (sin, cos) of increasing wavelength.
    """
    b, _, h, w = feature.shape
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, h + 1, dtype=torch.float32, device=feature.device) / (h + eps) * scale
    x = torch.arange(1, w + 1, dtype=torch.float32, device=feature.device) / (w + eps) * scale
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=feature.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_feats)
    pos_y = y[:, None] / dim_t  # (h, F)
    pos_x = x[:, None] / dim_t  # (w, F)
    pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()), dim=2).flatten(1)
    pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()), dim=2).flatten(1)
    pos = torch.cat((pos_y[:, None, :].expand(h, w, -1), pos_x[None, :, :].expand(h, w, -1)), dim=2)
    return pos.permute(2, 0, 1)[None].expand(b, -1, -1, -1).to(feature.dtype)


class DecoderLayer(nn.Module):
    """Self-attention, cross-attention to the feature map, FFN; post-norm (DETR) or pre-norm."""

    def __init__(self, dim: int, nheads: int, dim_feedforward: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, nheads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, nheads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(dim, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, dim)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def _self_attend(self, x: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        return self.dropout1(self.self_attn(x + query_pos, x + query_pos, x, need_weights=False)[0])

    def _cross_attend(self, x: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor,
                      pos: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.cross_attn(x + query_pos, memory + pos, memory, need_weights=False)[0])

    def _ffn(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(x)))))

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        """``tgt, query_pos: (B, Q, E)``, ``memory, pos: (B, h*w, E)`` -> ``(B, Q, E)``."""
        if self.pre_norm:
            tgt = tgt + self._self_attend(self.norm1(tgt), query_pos)
            tgt = tgt + self._cross_attend(self.norm2(tgt), query_pos, memory, pos)
            return tgt + self._ffn(self.norm3(tgt))
        tgt = self.norm1(tgt + self._self_attend(tgt, query_pos))
        tgt = self.norm2(tgt + self._cross_attend(tgt, query_pos, memory, pos))
        return self.norm3(tgt + self._ffn(tgt))


class QueryTransformerDecoder(nn.Module):
    """Learned queries decoded against a projected feature map; returns every layer's normalised output."""

    def __init__(
        self,
        in_channels: int,
        *,
        hidden_dim: int,
        num_queries: int,
        nheads: int,
        dim_feedforward: int,
        dec_layers: int,
        dropout: float,
        pre_norm: bool,
        enforce_input_proj: bool,
    ) -> None:
        super().__init__()
        if hidden_dim % 2 or hidden_dim % nheads:
            raise ValueError(f"MODEL.ZEGFORMER.HIDDEN_DIM = {hidden_dim} must be even and divisible by "
                             f"MODEL.ZEGFORMER.NHEADS = {nheads}")
        if dec_layers < 1:
            raise ValueError(f"MODEL.ZEGFORMER.DEC_LAYERS must be at least 1, got {dec_layers}")
        self.layers = nn.ModuleList(
            DecoderLayer(hidden_dim, nheads, dim_feedforward, dropout, pre_norm) for _ in range(dec_layers)
        )
        self.norm = nn.LayerNorm(hidden_dim)
        # Pre-norm DETR normalises the memory after its (here empty) encoder; the official code keeps that norm.
        self.memory_norm = nn.LayerNorm(hidden_dim) if pre_norm else nn.Identity()
        for p in self.parameters():  # DETR initialises the transformer weights Xavier-uniform
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        if in_channels != hidden_dim or enforce_input_proj:
            self.input_proj = Conv2d(in_channels, hidden_dim, kernel_size=1)
            weight_init.c2_xavier_fill(self.input_proj)
        else:
            self.input_proj = nn.Identity()
        self.hidden_dim = hidden_dim

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        """``feature: (B, C_in, h, w)`` -> ``(L, B, Q, E)``."""
        src = self.input_proj(feature)
        pos = sine_position_encoding(src, self.hidden_dim // 2).flatten(2).transpose(1, 2)
        memory = self.memory_norm(src.flatten(2).transpose(1, 2))
        query_pos = self.query_embed.weight[None].expand(src.shape[0], -1, -1)
        tgt = torch.zeros_like(query_pos)
        outputs = []
        for layer in self.layers:
            tgt = layer(tgt, memory, pos, query_pos)
            outputs.append(self.norm(tgt))
        return torch.stack(outputs)
