"""Mask-classification targets from dense label maps (one binary mask per class present).

Shapes: B batch, H/W padded label size, N classes present in one image.
``labels: (B, H, W)`` training class ids (positions among the seen classes) or ``ignore_label``
-> ``[{"labels": (N,), "masks": (N, H, W) bool, "valid": (H, W) bool}]``. Ignore pixels (unseen classes,
padding, unlabelled) belong to no mask, so they are negatives of every mask loss (official ZegFormer) unless
the matcher and criterion are told to leave them out (``valid`` is False there).
"""
from __future__ import annotations

import torch

__all__ = ["semantic_to_mask_targets"]


def semantic_to_mask_targets(labels: torch.Tensor, ignore_label: int) -> list[dict[str, torch.Tensor]]:
    """One target dict per image: the present class ids (ascending), their masks and the non-ignore pixels."""
    targets = []
    for label in labels:
        classes = torch.unique(label)
        classes = classes[classes != ignore_label]
        targets.append({"labels": classes, "masks": label[None] == classes[:, None, None],
                        "valid": label != ignore_label})
    return targets
