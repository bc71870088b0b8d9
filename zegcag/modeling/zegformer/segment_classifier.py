"""Segment classification against class embeddings (ZegFormer §3.2): cosine logits plus a learned no-object.

Shapes: Q queries (any leading dims ...), E hidden dim, D embedding dim, K classes.
``queries: (..., Q, E)``, ``class_embeddings: (K, D)`` unit rows -> ``logits: (..., Q, K+1)``, last = no-object.
``logits[c] = cos(P q, T_c) / tau`` with P a linear projection and tau a fixed temperature. The no-object
logit is ``cos(P q, b) / tau`` (paper, ``no_object_similarity="cosine"``) or ``<P q / |P q|, b> / tau`` with
an unnormalised b (official code, ``"dot"``).
With ``pooled_dim`` set (``SEGMENT_EMBEDDING "mask_pooled"``), the class logits use a second projection of a
mask-pooled pixel feature ``pooled: (..., Q, C)`` instead of ``P q``; the no-object logit still comes from the
query, which is what tells a matched segment from a duplicate covering the same pixels.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["NO_OBJECT_SIMILARITIES", "SegmentClassifier"]

NO_OBJECT_SIMILARITIES = ("cosine", "dot")


class SegmentClassifier(nn.Module):
    """Projects segment embeddings into the class-embedding space and scores them."""

    def __init__(
        self,
        hidden_dim: int,
        embed_dim: int,
        *,
        temperature: float,
        no_object_similarity: str,
        pooled_dim: int | None = None,
    ) -> None:
        """
        Args:
            hidden_dim: query dimension E.
            embed_dim: class-embedding dimension D (from the class embedder).
            temperature: tau > 0; logits are similarities / tau (fixed, not learned).
            no_object_similarity: "cosine" (paper) or "dot" (official code).
            pooled_dim: channels C of mask-pooled features that the class logits are computed from; None: the
                class logits use the query (paper).
        """
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"MODEL.ZEGFORMER.TEMPERATURE must be positive, got {temperature}")
        if no_object_similarity not in NO_OBJECT_SIMILARITIES:
            raise ValueError(f"MODEL.ZEGFORMER.NO_OBJECT_SIMILARITY must be one of {NO_OBJECT_SIMILARITIES}, "
                             f"got {no_object_similarity!r}")
        self.projection = nn.Linear(hidden_dim, embed_dim)
        self.pooled_projection = nn.Linear(pooled_dim, embed_dim) if pooled_dim else None
        self.no_object_embedding = nn.Parameter(torch.empty(1, embed_dim))
        nn.init.kaiming_uniform_(self.no_object_embedding, a=math.sqrt(5))
        self.temperature = temperature
        self.no_object_similarity = no_object_similarity
        self.embed_dim = embed_dim

    def check_embeddings(self, class_embeddings: torch.Tensor) -> None:
        """Raise if ``class_embeddings`` is not ``(K >= 1, D)`` with this classifier's D."""
        if class_embeddings.dim() != 2 or class_embeddings.shape[0] == 0:
            raise ValueError(f"class embeddings must be a non-empty (K, D) matrix, got shape "
                             f"{tuple(class_embeddings.shape)}")
        if class_embeddings.shape[1] != self.embed_dim:
            raise ValueError(
                f"class embeddings have dimension {class_embeddings.shape[1]} but the ZegFormer semantic "
                f"projection outputs {self.embed_dim}: the class embedder (MODEL.CLASS_EMBED.PROVIDER / "
                "CLIP_MODEL) differs from the one the model was built or trained with"
            )

    def forward(
        self, queries: torch.Tensor, class_embeddings: torch.Tensor, pooled: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(..., Q, E)``, ``(K, D)``, optional ``(..., Q, C)`` -> ``(..., Q, K+1)``."""
        self.check_embeddings(class_embeddings)
        if (pooled is None) != (self.pooled_projection is None):
            raise ValueError("mask-pooled features must be given exactly when the classifier was built with "
                             "pooled_dim (MODEL.ZEGFORMER.SEGMENT_EMBEDDING 'mask_pooled')")
        segment = F.normalize(self.projection(queries), dim=-1)
        no_object = self.no_object_embedding
        if self.no_object_similarity == "cosine":
            no_object = F.normalize(no_object, dim=-1)
        no_object_logit = segment @ no_object.to(segment.dtype).T
        if pooled is not None:
            segment = F.normalize(self.pooled_projection(pooled), dim=-1)
        class_logits = segment @ class_embeddings.to(segment.dtype).T
        return torch.cat([class_logits, no_object_logit], dim=-1) / self.temperature
