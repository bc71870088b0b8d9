"""HungarianMatcher: optimal against brute force, pairwise costs equal the per-pair losses."""
from __future__ import annotations

import itertools

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from zegcag.modeling.matcher import HungarianMatcher, pairwise_dice_cost, pairwise_sigmoid_focal_cost
from zegcag.modeling.zegformer.criterion import dice_loss


def random_case(seed: int, q: int, n: int, k: int = 5, size: int = 6):
    g = torch.Generator().manual_seed(seed)
    outputs = {"pred_logits": torch.randn(1, q, k + 1, generator=g) * 3,
               "pred_masks": torch.randn(1, q, size, size, generator=g) * 2}
    labels = torch.randint(0, k, (n,), generator=g)
    masks = torch.rand(n, size, size, generator=g) > 0.5
    return outputs, [{"labels": labels, "masks": masks}]


@pytest.mark.parametrize("seed,q,n", [(0, 4, 3), (1, 5, 2), (2, 3, 3), (3, 5, 4), (4, 6, 1)])
def test_assignment_is_optimal_against_brute_force(seed, q, n):
    outputs, targets = random_case(seed, q, n)
    matcher = HungarianMatcher(cost_class=1.0, cost_mask=20.0, cost_dice=1.0)
    cost = matcher.cost_matrix(outputs["pred_logits"][0], outputs["pred_masks"][0], targets[0])
    (rows, cols), = matcher(outputs, targets)
    assert len(rows) == n and len(set(rows.tolist())) == n and sorted(cols.tolist()) == list(range(n))
    best = min(sum(cost[p[j], j].item() for j in range(n)) for p in itertools.permutations(range(q), n))
    assert cost[rows, cols].sum().item() == pytest.approx(best, rel=1e-6)


def test_pairwise_costs_equal_per_pair_losses():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 30, generator=g) * 2
    targets = (torch.rand(3, 30, generator=g) > 0.4).float()
    focal = pairwise_sigmoid_focal_cost(logits, targets)
    dice = pairwise_dice_cost(logits, targets)
    for q in range(4):
        for n in range(3):
            expected = sigmoid_focal_loss(logits[q], targets[n], alpha=0.25, gamma=2.0).mean()
            assert focal[q, n].item() == pytest.approx(expected.item(), rel=1e-5)
            assert dice[q, n].item() == pytest.approx(dice_loss(logits[q:q + 1], targets[n:n + 1]).item(), rel=1e-5)


def test_obvious_match_by_class_and_mask():
    """Query 1 predicts class 2 on the left half, query 0 class 0 on the right half."""
    masks = torch.full((2, 4, 4), -10.0)
    masks[1, :, :2] = 10.0
    masks[0, :, 2:] = 10.0
    logits = torch.full((2, 4), -10.0)
    logits[1, 2] = 10.0
    logits[0, 0] = 10.0
    target_masks = torch.zeros(2, 8, 8, dtype=torch.bool)  # twice the prediction size: resized by the matcher
    target_masks[0, :, 4:] = True
    target_masks[1, :, :4] = True
    (rows, cols), = HungarianMatcher(1, 1, 1)({"pred_logits": logits[None], "pred_masks": masks[None]},
                                             [{"labels": torch.tensor([0, 2]), "masks": target_masks}])
    assert dict(zip(rows.tolist(), cols.tolist())) == {0: 0, 1: 1}


def test_image_without_targets_and_bad_inputs():
    outputs, _ = random_case(0, 3, 1)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 6, 6, dtype=torch.bool)}
    (rows, cols), = HungarianMatcher()(outputs, [empty])
    assert rows.numel() == 0 and cols.numel() == 0
    with pytest.raises(ValueError, match="2 targets"):
        HungarianMatcher()(outputs, [empty, empty])
    with pytest.raises(ValueError, match="all costs are 0"):
        HungarianMatcher(0, 0, 0)
