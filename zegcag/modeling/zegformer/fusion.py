"""ZegFormer inference arithmetic as pure functions (paper §3.4, official MaskFormer-style inference).

Shapes: Q queries, K classes, H/W output size.
``segment_class_probs``: ``(Q, K+1)`` logits -> ``(Q, K)`` probabilities without no-object.
``clip_class_probs``: ``(Q, K)`` CLIP logits (+ optional ``(Q,)`` no-object logits) -> ``(Q, K)``.
``fuse_class_probs``: segment p ``(Q, K)``, CLIP p' ``(Q, K)``, ``seen (K,)`` bool, lambda -> ``(Q, K)``:
    seen ``p^lambda * mean_seen(p')^(1-lambda)``, unseen ``p^(1-lambda) * p'^lambda``.
``semantic_scores``: ``(Q, K)`` probabilities, ``(Q, H, W)`` mask logits -> ``(K, H, W) = sum_q p_q(c) sigmoid(m_q)``.
``calibrate``: subtract gamma from the seen channels of ``(K, H, W)``.
"""
from __future__ import annotations

import torch

from ..zero_shot_segmentor import calibrate_scores as calibrate  # noqa: F401  (ZegFormer's gamma step)

__all__ = [
    "calibrate",
    "clip_class_probs",
    "fuse_class_probs",
    "segment_class_probs",
    "select_queries",
    "semantic_scores",
]


def segment_class_probs(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the K classes and no-object, no-object dropped: ``(Q, K+1)`` -> ``(Q, K)``."""
    return logits.float().softmax(-1)[..., :-1]


def clip_class_probs(clip_logits: torch.Tensor, no_object_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Softmax of the CLIP logits; with ``no_object_logits`` (the segment head's, official code) appended
    inside the softmax and dropped afterwards: ``(Q, K)`` [+ ``(Q,)``] -> ``(Q, K)``."""
    if no_object_logits is None:
        return clip_logits.float().softmax(-1)
    return segment_class_probs(torch.cat([clip_logits, no_object_logits[:, None].to(clip_logits.dtype)], dim=1))


def fuse_class_probs(
    segment_probs: torch.Tensor, clip_probs: torch.Tensor, seen: torch.Tensor, fusion_lambda: float
) -> torch.Tensor:
    """Geometric fusion of the two branches (see module docstring).

    CLIP's seen-class probabilities are replaced by their mean over the seen classes, so CLIP only
    shifts mass between seen and unseen and the segment head decides among seen classes.
    """
    if not 0.0 <= fusion_lambda <= 1.0:
        raise ValueError(f"MODEL.ZEGFORMER.FUSION_LAMBDA must be in [0, 1], got {fusion_lambda}")
    if segment_probs.shape != clip_probs.shape or segment_probs.shape[-1] != seen.numel():
        raise ValueError(f"fusion needs equal (Q, K) shapes and K seen flags, got {tuple(segment_probs.shape)}, "
                         f"{tuple(clip_probs.shape)} and {seen.numel()}")
    seen = seen.to(device=segment_probs.device, dtype=torch.bool)
    clip_avg = clip_probs.clone()
    if seen.any():
        clip_avg[:, seen] = clip_probs[:, seen].mean(dim=1, keepdim=True)
    seen_fused = segment_probs.pow(fusion_lambda) * clip_avg.pow(1 - fusion_lambda)
    unseen_fused = segment_probs.pow(1 - fusion_lambda) * clip_probs.pow(fusion_lambda)
    return torch.where(seen[None, :], seen_fused, unseen_fused)


def semantic_scores(class_probs: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """``(Q, K)``, ``(Q, H, W)`` -> ``(K, H, W)``: every query votes for its classes over its soft mask."""
    return torch.einsum("qk,qhw->khw", class_probs, mask_logits.float().sigmoid())


def select_queries(segment_probs: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (ascending) of the ``k`` queries with the highest class confidence; all if ``k <= 0``."""
    num = segment_probs.shape[0]
    if k <= 0 or k >= num:
        return torch.arange(num, device=segment_probs.device)
    return segment_probs.max(dim=1).values.topk(k).indices.sort().values
