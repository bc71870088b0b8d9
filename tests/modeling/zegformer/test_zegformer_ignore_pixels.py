"""MODEL.ZEGFORMER.IGNORE_PIXELS_AS_NEGATIVES: ignore pixels left out of the mask losses and matching costs."""
from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_model
from torchvision.ops import sigmoid_focal_loss

from zegcag.modeling.matcher import HungarianMatcher, pairwise_dice_cost, pairwise_sigmoid_focal_cost
from zegcag.modeling.zegformer.criterion import SetCriterion, dice_loss
from zegcag.modeling.zegformer.targets import semantic_to_mask_targets

from zegcag_testing import make_cfg
from zegformer_testing import tiny_zegformer_cfg

# One image, 2x3 labels: class 0 on the left, class 1 in the middle, ignore (255) on the right column.
LABELS = torch.tensor([[[0, 1, 255], [0, 1, 255]]])


def criterion(ignore_as_negatives: bool) -> SetCriterion:
    matcher = HungarianMatcher(1.0, 1.0, 1.0, ignore_as_negatives=ignore_as_negatives)
    return SetCriterion(matcher, no_object_weight=0.1, class_weight=1.0, mask_weight=1.0, dice_weight=1.0,
                        ignore_as_negatives=ignore_as_negatives)


def outputs(ignore_column_logit: float) -> dict:
    """Query q predicts class q on its ground-truth column, and ``ignore_column_logit`` on the ignore column."""
    logits = torch.full((1, 2, 3), -5.0)
    logits[0, 0, 0] = logits[0, 1, 1] = 5.0
    masks = torch.full((1, 2, 2, 3), -2.0)
    masks[0, 0, :, 0] = masks[0, 1, :, 1] = 3.0
    masks[0, :, :, 2] = ignore_column_logit
    return {"pred_logits": logits, "pred_masks": masks}


def test_targets_mark_valid_pixels():
    (target,) = semantic_to_mask_targets(LABELS, 255)
    assert target["valid"].tolist() == [[True, True, False], [True, True, False]]


def test_masked_losses_by_hand():
    """Both losses equal the per-mask focal mean and dice computed on the four valid pixels only."""
    out = outputs(ignore_column_logit=4.0)  # both queries cover the ignore column
    targets = semantic_to_mask_targets(LABELS, 255)
    losses = criterion(ignore_as_negatives=False)(out, targets)
    focal, dice = 0.0, 0.0
    for q in range(2):
        x = out["pred_masks"][0, q, :, :2].flatten()
        t = (LABELS[0, :, :2] == q).flatten().float()
        focal += sigmoid_focal_loss(x, t, alpha=0.25, gamma=2.0).mean().item()
        p = x.sigmoid()
        dice += (1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)).item()
    assert losses["loss_mask"].item() == pytest.approx(focal / 2, rel=1e-5)
    assert losses["loss_dice"].item() == pytest.approx(dice / 2, rel=1e-5)


def test_predictions_on_ignore_pixels_change_only_the_official_losses():
    targets = semantic_to_mask_targets(LABELS, 255)
    for ignore_as_negatives, should_change in ((False, False), (True, True)):
        low = criterion(ignore_as_negatives)(outputs(-4.0), targets)
        high = criterion(ignore_as_negatives)(outputs(4.0), targets)
        for key in ("loss_mask", "loss_dice"):
            changed = abs(low[key].item() - high[key].item()) > 1e-4
            assert changed == should_change, (key, ignore_as_negatives)
        # ignore pixels covered by a query cost more when they are negatives
        assert (high["loss_mask"] > low["loss_mask"]) == ignore_as_negatives


def test_pairwise_costs_with_valid_equal_losses_on_valid_pixels():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 30, generator=g) * 2
    valid = torch.rand(30, generator=g) > 0.3
    targets = ((torch.rand(3, 30, generator=g) > 0.4) & valid).float()
    focal = pairwise_sigmoid_focal_cost(logits, targets, valid=valid.float())
    dice = pairwise_dice_cost(logits, targets, valid=valid.float())
    for q in range(4):
        for n in range(3):
            expected = sigmoid_focal_loss(logits[q, valid], targets[n, valid], alpha=0.25, gamma=2.0).mean()
            assert focal[q, n].item() == pytest.approx(expected.item(), rel=1e-5)
            expected = dice_loss(logits[q:q + 1, valid], targets[n:n + 1, valid])
            assert dice[q, n].item() == pytest.approx(expected.item(), rel=1e-5)
            masked = dice_loss(logits[q:q + 1], targets[n:n + 1], valid[None].float())
            assert masked.item() == pytest.approx(expected.item(), rel=1e-5)


def test_matching_flips_when_ignore_pixels_are_left_out():
    """Query 0 covers the target column and the ignore column, query 1 the target and one background pixel.

    Officially query 0 pays for two false positives and loses; without ignore pixels it is exact and wins.
    """
    masks = torch.full((1, 2, 2, 3), -10.0)
    masks[0, 0, :, 1:] = 10.0
    masks[0, 1, :, 1] = 10.0
    masks[0, 1, 1, 0] = 10.0
    target = {"labels": torch.tensor([1]),
              "masks": torch.tensor([[[False, True, False], [False, True, False]]]),
              "valid": torch.tensor([[False, True, False], [True, True, False]])}
    pred = {"pred_logits": torch.zeros(1, 2, 3), "pred_masks": masks}
    ((official, _),) = HungarianMatcher(1.0, 1.0, 1.0)(pred, [target])
    ((masked, _),) = HungarianMatcher(1.0, 1.0, 1.0, ignore_as_negatives=False)(pred, [target])
    assert official.tolist() == [1]
    assert masked.tolist() == [0]


def test_config_default_is_official_and_reaches_matcher_and_criterion(tiny_benchmark):
    assert make_cfg("configs/Base-ZegFormer.yaml").MODEL.ZEGFORMER.IGNORE_PIXELS_AS_NEGATIVES
    official = build_model(tiny_zegformer_cfg("MODEL.ZEGFORMER.IGNORE_PIXELS_AS_NEGATIVES", "True"))
    assert official.criterion.ignore_as_negatives and official.criterion.matcher.ignore_as_negatives
    masked = build_model(tiny_zegformer_cfg("MODEL.ZEGFORMER.IGNORE_PIXELS_AS_NEGATIVES", "False"))
    assert not masked.criterion.ignore_as_negatives and not masked.criterion.matcher.ignore_as_negatives


def test_matcher_without_valid_pixels_is_a_clear_error():
    target = {"labels": torch.tensor([0]), "masks": torch.ones(1, 2, 3, dtype=torch.bool)}
    pred = {"pred_logits": torch.zeros(1, 2, 3), "pred_masks": torch.zeros(1, 2, 2, 3)}
    with pytest.raises(KeyError, match="target\\['valid'\\]"):
        HungarianMatcher(ignore_as_negatives=False)(pred, [target])
