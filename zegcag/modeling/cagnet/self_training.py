"""Self-training (+ST): pseudo-label the ignored pixels of training images with confident unseen predictions.

Shapes: B batch, K classes, h/w feature map size.
``logits: (B, K, h, w)``, ``labels: (B, h, w)`` -> ``labels`` with some ignored pixels set to an unseen class.
Rules for which ignored pixels are candidates:
  "argmax_unseen": the model's overall top class is unseen (ZS3Net's rule);
  "best_unseen": every ignored pixel, tagged with its best unseen class (the official CaGNet code's rule).
Then, per unseen class, the candidates with the highest probability are kept: the top ``fraction`` of them
within the batch (ZS3Net keeps the pixels above the 75th percentile: fraction 0.25).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

PSEUDO_LABEL_RULES = ("argmax_unseen", "best_unseen")


def check_pseudo_label_rule(rule: str, fraction: float) -> None:
    if rule not in PSEUDO_LABEL_RULES:
        raise ValueError(f"MODEL.CAGNET.ST.RULE must be one of {PSEUDO_LABEL_RULES}, got {rule!r}")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"MODEL.CAGNET.ST.FRACTION must be in (0, 1], got {fraction}")


@torch.no_grad()
def pseudo_label(logits: torch.Tensor, labels: torch.Tensor, unseen: Sequence[int], ignore_label: int,
                 rule: str = "argmax_unseen", fraction: float = 0.25) -> torch.Tensor:
    """A copy of ``labels`` where the kept candidates carry their unseen class (labelled pixels never change)."""
    check_pseudo_label_rule(rule, fraction)
    unseen_ids = torch.as_tensor(list(unseen), device=logits.device)
    probs = torch.softmax(logits.float(), dim=1)
    best_prob, best = probs[:, unseen_ids].max(dim=1)
    best = unseen_ids[best]
    candidates = labels == ignore_label
    if rule == "argmax_unseen":
        candidates &= probs.argmax(dim=1) == best
    out = labels.clone()
    for c in unseen_ids.tolist():
        selected = candidates & (best == c)
        n = int(selected.sum())
        if n == 0:
            continue
        keep = max(1, math.ceil(n * fraction))
        threshold = best_prob[selected].topk(keep).values[-1]
        out[selected & (best_prob >= threshold)] = c
    return out
