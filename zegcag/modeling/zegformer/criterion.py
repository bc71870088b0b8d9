"""Set-prediction losses of ZegFormer (MaskFormer): classification + sigmoid focal + dice on matched pairs.

Shapes: B batch, Q queries, K+1 logits (last = no-object), h/w predicted-mask size, H/W padded
ground-truth size, M matched pairs in the batch.
``outputs = {"pred_logits": (B, Q, K+1), "pred_masks": (B, Q, h, w), "aux_outputs": [same, per earlier layer]}``,
``targets = [{"labels": (N,), "masks": (N, H, W)}]`` -> weighted losses ``loss_ce``, ``loss_mask``, ``loss_dice``
for the last decoder layer and ``loss_*_{i}`` for decoder layer i (deep supervision, matching redone per layer).
With ``ignore_as_negatives=False`` the mask losses average over the pixels where ``target["valid"]: (H, W)`` is True.
"""
from __future__ import annotations

import torch
from detectron2.utils import comm
from torch import nn
from torch.nn import functional as F
from torchvision.ops import sigmoid_focal_loss

from ..matcher import HungarianMatcher

__all__ = ["SetCriterion", "dice_loss"]


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """``1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1)`` per mask: ``(M, P), (M, P) -> (M,)``.

    Optional ``valid: (M, P)`` {0, 1}: the sums run over the valid pixels only.
    """
    prob = logits.sigmoid()
    if valid is not None:
        prob, targets = prob * valid, targets * valid
    numerator = 2 * (prob * targets).sum(-1)
    denominator = prob.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


class SetCriterion(nn.Module):
    """Hungarian-matched losses; unmatched queries are trained towards no-object.

    Args:
        matcher: assigns queries to targets (redone for every decoder layer).
        no_object_weight: cross-entropy class weight of the no-object logit (real classes weigh 1).
        class_weight, mask_weight, dice_weight: multipliers of the three terms.
        focal_alpha, focal_gamma: sigmoid focal loss parameters of the mask term.
        ignore_as_negatives: ignore pixels are negatives of every mask (official); False leaves them out of
            the focal and dice losses (the matcher has its own flag).
    """

    def __init__(
        self,
        matcher: HungarianMatcher,
        *,
        no_object_weight: float,
        class_weight: float,
        mask_weight: float,
        dice_weight: float,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        ignore_as_negatives: bool = True,
    ) -> None:
        super().__init__()
        self.matcher = matcher
        self.no_object_weight = no_object_weight
        self.weights = {"loss_ce": class_weight, "loss_mask": mask_weight, "loss_dice": dice_weight}
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.ignore_as_negatives = ignore_as_negatives

    def forward(self, outputs: dict, targets: list[dict]) -> dict[str, torch.Tensor]:
        num_masks = self.num_masks(targets, outputs["pred_logits"].device)
        losses = self.layer_losses(outputs, targets, num_masks)
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            losses.update({f"{k}_{i}": v for k, v in self.layer_losses(aux, targets, num_masks).items()})
        return losses

    @staticmethod
    def num_masks(targets: list[dict], device: torch.device) -> float:
        """Ground-truth masks per worker, averaged over workers, at least 1 (the loss normaliser)."""
        count = torch.as_tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        if comm.get_world_size() > 1:
            torch.distributed.all_reduce(count)
        return max(count.item() / comm.get_world_size(), 1.0)

    def layer_losses(self, outputs: dict, targets: list[dict], num_masks: float) -> dict[str, torch.Tensor]:
        """Weighted losses of one decoder layer's predictions."""
        indices = self.matcher(outputs, targets)
        losses = {"loss_ce": self.loss_labels(outputs["pred_logits"], targets, indices)}
        losses.update(self.loss_masks(outputs["pred_masks"], targets, indices, num_masks))
        return {k: v * self.weights[k] for k, v in losses.items()}

    def loss_labels(self, logits: torch.Tensor, targets: list[dict], indices: list) -> torch.Tensor:
        """Weighted cross-entropy over K+1 logits; ``logits: (B, Q, K+1)``."""
        num_classes = logits.shape[-1] - 1
        target_classes = torch.full(logits.shape[:2], num_classes, dtype=torch.int64, device=logits.device)
        for b, (query_ids, target_ids) in enumerate(indices):
            target_classes[b, query_ids.to(logits.device)] = targets[b]["labels"][target_ids].to(logits.device)
        class_weights = torch.ones(num_classes + 1, device=logits.device)
        class_weights[-1] = self.no_object_weight
        return F.cross_entropy(logits.float().transpose(1, 2), target_classes, class_weights)

    def loss_masks(
        self, masks: torch.Tensor, targets: list[dict], indices: list, num_masks: float
    ) -> dict[str, torch.Tensor]:
        """Focal and dice losses of matched masks, upsampled to the target size; ``masks: (B, Q, h, w)``."""
        pred = torch.cat([masks[b, q.to(masks.device)] for b, (q, _) in enumerate(indices)])
        if pred.shape[0] == 0:  # no ground truth in the batch (e.g. unseen classes only): keep the graph
            zero = masks.sum() * 0.0
            return {"loss_mask": zero, "loss_dice": zero.clone()}
        target = torch.cat([t["masks"][i.to(t["masks"].device)] for t, (_, i) in zip(targets, indices)])
        target = target.to(device=pred.device, dtype=torch.float32)
        pred = F.interpolate(pred[:, None].float(), size=target.shape[-2:], mode="bilinear", align_corners=False)
        pred, target = pred.flatten(1), target.flatten(1)
        focal = sigmoid_focal_loss(pred, target, alpha=self.focal_alpha, gamma=self.focal_gamma, reduction="none")
        if self.ignore_as_negatives:
            return {
                "loss_mask": focal.mean(1).sum() / num_masks,
                "loss_dice": dice_loss(pred, target).sum() / num_masks,
            }
        valid = torch.cat([t["valid"][None].expand(len(i), -1, -1) for t, (_, i) in zip(targets, indices)])
        valid = valid.to(device=pred.device, dtype=torch.float32).flatten(1)
        focal = (focal * valid).sum(1) / valid.sum(1).clamp(min=1.0)
        return {
            "loss_mask": focal.sum() / num_masks,
            "loss_dice": dice_loss(pred, target, valid).sum() / num_masks,
        }
