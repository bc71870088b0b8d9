"""Hungarian matching of predicted segments to ground-truth masks (DETR / MaskFormer set prediction).

Shapes: B batch, Q queries, K+1 logits (last = no-object), N ground-truth masks of one image,
h/w predicted-mask size, H/W ground-truth size, P pixels (h*w).
``pred_logits: (B, Q, K+1)``, ``pred_masks: (B, Q, h, w)`` logits, targets ``[{"labels": (N,), "masks": (N, H, W)}]``
-> per image ``(query_ids, target_ids)``, both ``(min(Q, N),)`` int64, query_ids ascending.
Cost of assigning query q to target n: ``w_class * (-p_q(label_n)) + w_mask * focal(q, n) + w_dice * dice(q, n)``.
With ``ignore_as_negatives=False`` the mask costs skip the pixels where ``target["valid"]: (H, W)`` is False.
"""
from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn import functional as F

__all__ = ["HungarianMatcher", "pairwise_dice_cost", "pairwise_sigmoid_focal_cost"]


def pairwise_sigmoid_focal_cost(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean-over-pixels sigmoid focal loss of every (prediction, target) pair.

    ``logits: (Q, P)``, ``targets: (N, P)`` in {0, 1}, optional ``valid: (P,)`` {0, 1} -> ``(Q, N)``. Equals
    ``sigmoid_focal_loss(logits[q], targets[n]).mean()`` for each pair, the mean taken over the valid pixels
    when ``valid`` is given; linear in the target, hence two matrix products.
    """
    prob = logits.sigmoid()
    # The loss of a pixel is loss_pos if its target is 1 and loss_neg if 0.
    loss_pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    loss_neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    loss_pos = (1 - prob) ** gamma * loss_pos
    loss_neg = prob ** gamma * loss_neg
    if alpha >= 0:
        loss_pos = alpha * loss_pos
        loss_neg = (1 - alpha) * loss_neg
    if valid is None:
        return (loss_pos @ targets.T + loss_neg @ (1 - targets).T) / logits.shape[-1]
    valid = valid.to(logits.dtype)
    cost = (loss_pos * valid) @ targets.T + (loss_neg * valid) @ (1 - targets).T
    return cost / valid.sum().clamp(min=1.0)


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)`` with p = sigmoid(logits): ``(Q, P), (N, P) -> (Q, N)``.

    Optional ``valid: (P,)`` {0, 1}: sums run over the valid pixels only.
    """
    prob = logits.sigmoid()
    if valid is not None:
        prob = prob * valid.to(prob.dtype)
        targets = targets * valid.to(targets.dtype)
    numerator = 2 * prob @ targets.T
    denominator = prob.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising the weighted class + focal + dice cost, per image.

    Ground-truth masks are resized (nearest) to the predicted-mask size before computing costs, as in
    MaskFormer; the losses themselves compare at ground-truth resolution (see SetCriterion).
    ``ignore_as_negatives``: ignore pixels are negatives of every mask cost (official); False leaves the
    pixels where ``target["valid"]`` is False out of the mask costs.
    """

    def __init__(
        self,
        cost_class: float = 1.0,
        cost_mask: float = 1.0,
        cost_dice: float = 1.0,
        *,
        ignore_as_negatives: bool = True,
    ) -> None:
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("HungarianMatcher: all costs are 0, the matching would be arbitrary")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.ignore_as_negatives = ignore_as_negatives

    def cost_matrix(self, logits: torch.Tensor, masks: torch.Tensor, target: dict) -> torch.Tensor:
        """``logits: (Q, K+1)``, ``masks: (Q, h, w)``, one image's target -> ``(Q, N)`` float32 cost."""
        labels, target_masks = target["labels"], target["masks"]
        prob = logits.float().softmax(-1)
        cost_class = -prob[:, labels]
        target_masks = target_masks.to(masks.dtype)
        if target_masks.shape[-2:] != masks.shape[-2:]:
            target_masks = F.interpolate(target_masks[:, None], size=masks.shape[-2:], mode="nearest")[:, 0]
        pred = masks.flatten(1).float()
        tgt = target_masks.flatten(1).float()
        valid = None
        if not self.ignore_as_negatives:
            if "valid" not in target:
                raise KeyError("HungarianMatcher(ignore_as_negatives=False) needs target['valid'], the (H, W) "
                               "non-ignore pixels (see zegcag/modeling/zegformer/targets.py)")
            valid = target["valid"].to(masks.dtype)[None, None]
            if valid.shape[-2:] != masks.shape[-2:]:
                valid = F.interpolate(valid, size=masks.shape[-2:], mode="nearest")
            valid = valid.flatten().float()
        return (
            self.cost_class * cost_class
            + self.cost_mask * pairwise_sigmoid_focal_cost(pred, tgt, valid=valid)
            + self.cost_dice * pairwise_dice_cost(pred, tgt, valid=valid)
        )

    @torch.no_grad()
    def forward(self, outputs: dict, targets: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``outputs["pred_logits"]: (B, Q, K+1)``, ``outputs["pred_masks"]: (B, Q, h, w)`` -> B index pairs."""
        logits, masks = outputs["pred_logits"], outputs["pred_masks"]
        if len(targets) != logits.shape[0]:
            raise ValueError(f"HungarianMatcher: {logits.shape[0]} predictions but {len(targets)} targets")
        indices = []
        for b, target in enumerate(targets):
            if len(target["labels"]) == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                indices.append((empty, empty.clone()))
                continue
            cost = self.cost_matrix(logits[b], masks[b], target).cpu()
            rows, cols = linear_sum_assignment(cost.numpy())
            indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
