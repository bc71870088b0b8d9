"""SetCriterion and targets: losses on hand-made inputs, permutation invariance, deep supervision, no targets."""
from __future__ import annotations

import math

import pytest
import torch

from zegcag.modeling.matcher import HungarianMatcher
from zegcag.modeling.zegformer.criterion import SetCriterion, dice_loss
from zegcag.modeling.zegformer.targets import semantic_to_mask_targets


def criterion(no_object_weight=0.1, class_weight=1.0, mask_weight=20.0, dice_weight=1.0) -> SetCriterion:
    return SetCriterion(HungarianMatcher(1.0, 20.0, 1.0), no_object_weight=no_object_weight,
                        class_weight=class_weight, mask_weight=mask_weight, dice_weight=dice_weight)


def test_dice_loss_by_hand():
    big = 30.0  # sigmoid ~ exactly 0 / 1
    logits = torch.tensor([[big, big, -big, -big], [big, -big, -big, -big]])
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    assert dice_loss(logits, target).tolist() == pytest.approx([1 - 5 / 5, 1 - 1 / 4], abs=1e-6)


def test_losses_by_hand_for_one_matched_query():
    """Two queries, one target: the matched query's CE, focal and dice, and no-object CE for the other."""
    logits = torch.tensor([[[2.0, 0.0, 1.0], [0.0, 0.0, 3.0]]])  # (1, 2, K+1=3)
    masks = torch.zeros(1, 2, 2, 2)
    masks[0, 0] = torch.tensor([[2.0, -2.0], [0.0, 1.0]])
    target = {"labels": torch.tensor([0]), "masks": torch.tensor([[[True, False], [False, True]]])}
    losses = criterion(no_object_weight=0.5, mask_weight=1.0)({"pred_logits": logits, "pred_masks": masks}, [target])

    ce0 = -torch.log_softmax(logits[0, 0], -1)[0]  # query 0 -> class 0 (weight 1)
    ce1 = -torch.log_softmax(logits[0, 1], -1)[2]  # query 1 -> no-object (weight 0.5)
    assert losses["loss_ce"].item() == pytest.approx(((ce0 + 0.5 * ce1) / 1.5).item(), rel=1e-5)

    x = masks[0, 0].flatten()
    t = target["masks"][0].flatten().float()
    p = x.sigmoid()
    p_t = p * t + (1 - p) * (1 - t)
    alpha_t = 0.25 * t + 0.75 * (1 - t)
    focal = (alpha_t * (1 - p_t) ** 2 * -torch.log(p_t)).mean()
    assert losses["loss_mask"].item() == pytest.approx(focal.item(), rel=1e-4)
    dice = 1 - (2 * (p * t).sum() + 1) / (p.sum() + t.sum() + 1)
    assert losses["loss_dice"].item() == pytest.approx(dice.item(), rel=1e-5)


def random_outputs(seed, b=2, q=5, k=4, size=8, layers=3):
    g = torch.Generator().manual_seed(seed)
    outs = [{"pred_logits": torch.randn(b, q, k + 1, generator=g),
             "pred_masks": torch.randn(b, q, size, size, generator=g)} for _ in range(layers)]
    return {**outs[-1], "aux_outputs": outs[:-1]}


def random_targets(seed, b=2, k=4, size=16):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (b, size, size), generator=g)
    labels[0, :4] = 255
    return semantic_to_mask_targets(labels, 255)


def test_permutation_invariance_of_queries_and_targets():
    outputs, targets = random_outputs(0), random_targets(1)
    reference = criterion()(outputs, targets)
    perm_q = torch.tensor([3, 0, 4, 1, 2])

    def permute(out):
        return {"pred_logits": out["pred_logits"][:, perm_q], "pred_masks": out["pred_masks"][:, perm_q]}

    permuted = {**permute(outputs), "aux_outputs": [permute(a) for a in outputs["aux_outputs"]]}
    shuffled_targets = []
    for t in targets:
        perm_t = torch.arange(len(t["labels"])).flip(0)
        shuffled_targets.append({"labels": t["labels"][perm_t], "masks": t["masks"][perm_t]})
    result = criterion()(permuted, shuffled_targets)
    assert set(result) == set(reference)
    for key in reference:
        assert result[key].item() == pytest.approx(reference[key].item(), rel=1e-5), key


def test_deep_supervision_keys_weights_and_gradients():
    outputs = random_outputs(2)
    for out in [outputs, *outputs["aux_outputs"]]:
        out["pred_masks"].requires_grad_(True)
    targets = random_targets(3)
    losses = criterion()(outputs, targets)
    assert set(losses) == {f"loss_{n}{s}" for n in ("ce", "mask", "dice") for s in ("", "_0", "_1")}
    unweighted = criterion(mask_weight=1.0)(outputs, targets)
    assert losses["loss_mask_1"].item() == pytest.approx(20 * unweighted["loss_mask_1"].item(), rel=1e-5)
    sum(losses.values()).backward()
    assert all(o["pred_masks"].grad.abs().sum() > 0 for o in [outputs, *outputs["aux_outputs"]])


def test_batch_without_ground_truth_trains_towards_no_object():
    outputs = random_outputs(4, layers=1)
    outputs["pred_logits"].requires_grad_(True)
    outputs["pred_masks"].requires_grad_(True)
    targets = semantic_to_mask_targets(torch.full((2, 16, 16), 255), 255)
    losses = criterion()(outputs, targets)
    assert losses["loss_mask"].item() == 0 and losses["loss_dice"].item() == 0
    expected = -torch.log_softmax(outputs["pred_logits"], -1)[..., -1].mean()  # all targets no-object
    assert losses["loss_ce"].item() == pytest.approx(expected.item(), rel=1e-5)
    sum(losses.values()).backward()
    assert outputs["pred_masks"].grad is not None


def test_mask_targets_from_labels():
    labels = torch.tensor([[[3, 3, 255], [0, 3, 255]], [[255, 255, 255], [255, 255, 255]]])
    first, second = semantic_to_mask_targets(labels, 255)
    assert first["labels"].tolist() == [0, 3]
    assert first["masks"].tolist() == [[[False, False, False], [True, False, False]],
                                       [[True, True, False], [False, True, False]]]
    assert second["labels"].numel() == 0 and second["masks"].shape == (0, 2, 3)
    assert not first["masks"][:, :, 2].any()  # ignore pixels are negatives of every mask
    assert math.isclose(SetCriterion.num_masks([first, second], torch.device("cpu")), 2.0)
    assert SetCriterion.num_masks([second], torch.device("cpu")) == 1.0
