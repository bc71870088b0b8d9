"""Inference arithmetic: class probabilities, lambda fusion, per-pixel scores, calibration, top-k."""
from __future__ import annotations

import pytest
import torch

from zegcag.modeling.zegformer import fusion

SEEN = torch.tensor([True, True, False, True, False])


def probs(seed, q=4, k=5):
    return torch.rand(q, k, generator=torch.Generator().manual_seed(seed)).softmax(-1) * 0.9


def test_segment_and_clip_probabilities():
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    p = fusion.segment_class_probs(logits)
    assert p.shape == (1, 2)
    assert torch.allclose(p, logits.softmax(-1)[:, :2])
    clip = torch.tensor([[3.0, 1.0]])
    assert torch.allclose(fusion.clip_class_probs(clip), clip.softmax(-1))
    with_no_object = fusion.clip_class_probs(clip, torch.tensor([2.0]))
    assert torch.allclose(with_no_object, torch.tensor([[3.0, 1.0, 2.0]]).softmax(-1)[:, :2])


def test_fusion_lambda_one_takes_seen_from_segments_and_unseen_from_clip():
    p, p_clip = probs(0), probs(1)
    fused = fusion.fuse_class_probs(p, p_clip, SEEN, 1.0)
    assert torch.allclose(fused[:, SEEN], p[:, SEEN])
    assert torch.allclose(fused[:, ~SEEN], p_clip[:, ~SEEN])


def test_fusion_lambda_zero_takes_seen_mean_from_clip_and_unseen_from_segments():
    p, p_clip = probs(2), probs(3)
    fused = fusion.fuse_class_probs(p, p_clip, SEEN, 0.0)
    seen_mean = p_clip[:, SEEN].mean(1, keepdim=True)
    assert torch.allclose(fused[:, SEEN], seen_mean.expand(-1, int(SEEN.sum())))
    assert torch.allclose(fused[:, ~SEEN], p[:, ~SEEN])


def test_fusion_by_hand_and_checks():
    p = torch.tensor([[0.4, 0.1, 0.2, 0.3, 0.0]])
    p_clip = torch.tensor([[0.1, 0.2, 0.25, 0.3, 0.15]])
    lam = 2 / 3
    fused = fusion.fuse_class_probs(p, p_clip, SEEN, lam)
    seen_mean = (0.1 + 0.2 + 0.3) / 3
    assert fused[0, 0].item() == pytest.approx(0.4 ** lam * seen_mean ** (1 - lam))
    assert fused[0, 2].item() == pytest.approx(0.2 ** (1 - lam) * 0.25 ** lam)
    assert fused[0, 4].item() == 0.0
    no_seen = fusion.fuse_class_probs(p, p_clip, torch.zeros(5, dtype=torch.bool), lam)  # user vocabulary
    assert torch.allclose(no_seen, p.pow(1 - lam) * p_clip.pow(lam))
    with pytest.raises(ValueError, match="FUSION_LAMBDA"):
        fusion.fuse_class_probs(p, p_clip, SEEN, 1.5)
    with pytest.raises(ValueError, match="shapes"):
        fusion.fuse_class_probs(p, p_clip[:, :4], SEEN, lam)


def test_semantic_scores_and_calibration():
    class_probs = torch.tensor([[1.0, 0.0], [0.25, 0.75]])
    masks = torch.tensor([[[100.0, -100.0]], [[0.0, 100.0]]])  # (Q=2, 1, 2): sigmoids [[1, 0]], [[0.5, 1]]
    scores = fusion.semantic_scores(class_probs, masks)
    assert scores.shape == (2, 1, 2)
    assert torch.allclose(scores, torch.tensor([[[1.0 + 0.125, 0.25]], [[0.375, 0.75]]]))
    calibrated = fusion.calibrate(scores, torch.tensor([True, False]), 0.5)
    assert torch.allclose(calibrated[0], scores[0] - 0.5) and torch.equal(calibrated[1], scores[1])
    assert fusion.calibrate(scores, torch.tensor([True, False]), 0.0) is scores


def test_select_queries():
    p = torch.tensor([[0.1, 0.2], [0.9, 0.0], [0.3, 0.05], [0.0, 0.6]])
    assert fusion.select_queries(p, 2).tolist() == [1, 3]
    assert fusion.select_queries(p, 0).tolist() == [0, 1, 2, 3]
    assert fusion.select_queries(p, 10).tolist() == [0, 1, 2, 3]
