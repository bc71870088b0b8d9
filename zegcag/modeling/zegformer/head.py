"""ZegFormer's segmentation head: pixel decoder + query decoder + mask embedding + segment classifier.

Shapes: B batch, L decoder layers, Q queries, E hidden dim, M mask dim, K classes, h/w the mask-feature size
(finest input stride, 1/4 for ResNet res2).
``features`` (backbone dict), ``class_embeddings: (K, D)`` ->
``{"pred_logits": (B, Q, K+1), "pred_masks": (B, Q, h, w), "aux_outputs": [{same} for layers 1..L-1]}``.
Mask logits are ``<MLP(query), mask_features[:, y, x]>``. With ``segment_embedding="mask_pooled"`` the class
logits come from the transformer-input feature averaged under each query's mask (see ``mask_pooled_features``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from torch import nn
from torch.nn import functional as F

from .pixel_decoder import FPNPixelDecoder
from .segment_classifier import SegmentClassifier
from .transformer_decoder import QueryTransformerDecoder

__all__ = ["MLP", "SEGMENT_EMBEDDINGS", "ZegFormerHead", "mask_pooled_features"]

SEGMENT_EMBEDDINGS = ("query", "mask_pooled")


def mask_pooled_features(mask_logits: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
    """Average of ``feature`` under each mask: ``(..., B, Q, h, w)``, ``(B, C, H, W)`` -> ``(..., B, Q, C)``.

    The masks are resized to the feature's size and binarised at probability 0.5; a mask with no pixel above 0.5
    falls back to its sigmoid weights. Soft weights alone would let a small object's pooled feature be dominated by
    the many low-probability pixels around it (an object of 1 % of the image with 0.05 outside gets ~5x more weight
    outside than inside). The masks are detached: the classification loss trains the features and the classifier.
    """
    lead = mask_logits.shape[:-2]
    probs = F.interpolate(mask_logits.detach().reshape(-1, 1, *mask_logits.shape[-2:]), size=feature.shape[-2:],
                          mode="bilinear", align_corners=False).sigmoid().reshape(*lead, -1)
    inside = (probs > 0.5).to(probs.dtype)
    weights = torch.where(inside.sum(-1, keepdim=True) > 0, inside, probs)
    pooled = torch.einsum("...bqn,bcn->...bqc", weights, feature.flatten(2))
    return pooled / weights.sum(-1, keepdim=True).clamp(min=1e-6)


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them: ``(..., in_dim)`` -> ``(..., out_dim)``."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


@SEM_SEG_HEADS_REGISTRY.register()
class ZegFormerHead(nn.Module):
    @configurable
    def __init__(
        self,
        *,
        pixel_decoder: FPNPixelDecoder,
        transformer_decoder: QueryTransformerDecoder,
        transformer_in_feature: str,
        segment_classifier: SegmentClassifier,
        deep_supervision: bool,
        segment_embedding: str = "query",
    ) -> None:
        """
        Args:
            pixel_decoder: backbone features -> per-pixel mask features.
            transformer_decoder: ``transformer_in_feature`` -> per-layer query embeddings.
            segment_classifier: query embeddings x class embeddings -> class logits.
            deep_supervision: in training, also return every earlier layer's predictions.
            segment_embedding: "query" (paper) or "mask_pooled": class logits from the transformer-input feature
                pooled under each mask (the classifier must then be built with that feature's ``pooled_dim``).
        """
        super().__init__()
        if segment_embedding not in SEGMENT_EMBEDDINGS:
            raise ValueError(f"MODEL.ZEGFORMER.SEGMENT_EMBEDDING must be one of {SEGMENT_EMBEDDINGS}, "
                             f"got {segment_embedding!r}")
        if (segment_embedding == "mask_pooled") != (segment_classifier.pooled_projection is not None):
            raise ValueError("SEGMENT_EMBEDDING 'mask_pooled' needs a segment classifier built with pooled_dim")
        self.segment_embedding = segment_embedding
        self.pixel_decoder = pixel_decoder
        self.transformer_decoder = transformer_decoder
        self.transformer_in_feature = transformer_in_feature
        self.segment_classifier = segment_classifier
        hidden = transformer_decoder.hidden_dim
        self.mask_embed = MLP(hidden, hidden, pixel_decoder.mask_dim, 3)
        self.deep_supervision = deep_supervision

    @classmethod
    def from_config(cls, cfg, input_shape: Mapping[str, ShapeSpec], embed_dim: int | None = None) -> dict:
        if embed_dim is None:
            from ...embeddings import build_class_embedder

            embed_dim = build_class_embedder(cfg).dim
        in_features: Sequence[str] = cfg.MODEL.ZEGFORMER.IN_FEATURES
        missing = [f for f in [*in_features, cfg.MODEL.ZEGFORMER.TRANSFORMER_IN_FEATURE] if f not in input_shape]
        if missing:
            raise KeyError(f"MODEL.ZEGFORMER.IN_FEATURES / TRANSFORMER_IN_FEATURE name {missing}, which the "
                           f"backbone does not output (it outputs {sorted(input_shape)})")
        in_feature = cfg.MODEL.ZEGFORMER.TRANSFORMER_IN_FEATURE
        segment_embedding = cfg.MODEL.ZEGFORMER.SEGMENT_EMBEDDING
        return {
            "pixel_decoder": FPNPixelDecoder(
                {k: input_shape[k] for k in in_features},
                conv_dim=cfg.MODEL.ZEGFORMER.CONVS_DIM,
                mask_dim=cfg.MODEL.ZEGFORMER.MASK_DIM,
                norm=cfg.MODEL.ZEGFORMER.NORM,
            ),
            "transformer_decoder": QueryTransformerDecoder(
                input_shape[in_feature].channels,
                hidden_dim=cfg.MODEL.ZEGFORMER.HIDDEN_DIM,
                num_queries=cfg.MODEL.ZEGFORMER.NUM_OBJECT_QUERIES,
                nheads=cfg.MODEL.ZEGFORMER.NHEADS,
                dim_feedforward=cfg.MODEL.ZEGFORMER.DIM_FEEDFORWARD,
                dec_layers=cfg.MODEL.ZEGFORMER.DEC_LAYERS,
                dropout=cfg.MODEL.ZEGFORMER.DROPOUT,
                pre_norm=cfg.MODEL.ZEGFORMER.PRE_NORM,
                enforce_input_proj=cfg.MODEL.ZEGFORMER.ENFORCE_INPUT_PROJ,
            ),
            "transformer_in_feature": in_feature,
            "segment_classifier": SegmentClassifier(
                cfg.MODEL.ZEGFORMER.HIDDEN_DIM,
                embed_dim,
                temperature=cfg.MODEL.ZEGFORMER.TEMPERATURE,
                no_object_similarity=cfg.MODEL.ZEGFORMER.NO_OBJECT_SIMILARITY,
                pooled_dim=input_shape[in_feature].channels if segment_embedding == "mask_pooled" else None,
            ),
            "deep_supervision": cfg.MODEL.ZEGFORMER.DEEP_SUPERVISION,
            "segment_embedding": segment_embedding,
        }

    def forward(self, features: Mapping[str, torch.Tensor], class_embeddings: torch.Tensor) -> dict:
        """Backbone features and ``(K, D)`` class embeddings -> predictions (see module docstring)."""
        mask_features = self.pixel_decoder(features)
        queries = self.transformer_decoder(features[self.transformer_in_feature])  # (L, B, Q, E)
        if not (self.training and self.deep_supervision):
            queries = queries[-1:]
        masks = torch.einsum("lbqm,bmhw->lbqhw", self.mask_embed(queries), mask_features)
        pooled = None
        if self.segment_embedding == "mask_pooled":
            pooled = mask_pooled_features(masks, features[self.transformer_in_feature])
        logits = self.segment_classifier(queries, class_embeddings, pooled)
        outputs = {"pred_logits": logits[-1], "pred_masks": masks[-1]}
        if self.training and self.deep_supervision:
            outputs["aux_outputs"] = [{"pred_logits": a, "pred_masks": b} for a, b in zip(logits[:-1], masks[:-1])]
        return outputs
