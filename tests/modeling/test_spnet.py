"""SPNet baseline on CPU: training losses and gradients, inference shapes, calibration, vocabulary change."""
from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_model

from zegcag.modeling import Vocabulary
from zegcag.modeling.aspp_sum import SummedASPP
from zegcag_testing import TINY_SPNET_OPTS, make_cfg


@pytest.fixture
def model(tiny_benchmark):
    torch.manual_seed(0)
    return build_model(make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS))


def batch(h=32, w=40, n=2, with_labels=True):
    out = []
    for _ in range(n):
        x = {"image": torch.randint(0, 255, (3, h, w), dtype=torch.uint8), "height": h, "width": w}
        if with_labels:
            x["sem_seg"] = torch.randint(0, 16, (h, w))
            x["sem_seg"][:4] = 255
        out.append(x)
    return out


def test_forward_backward(model):
    model.train()
    losses = model(batch())
    assert set(losses) == {"loss_ce"} and torch.isfinite(losses["loss_ce"])
    losses["loss_ce"].backward()
    assert model.projection.branches[0].weight.grad.abs().sum() > 0
    assert model.backbone.layers[0].weight.grad.abs().sum() > 0


def test_training_scores_only_seen_classes(model):
    """An unseen-class pixel in the targets would be an out-of-range class for the seen-only logits."""
    model.train()
    x = batch(n=1)
    x[0]["sem_seg"][:] = 16  # unseen 'potted plant', not yet relabelled by a mapper
    assert model(x)["loss_ce"].item() == 0.0  # all ignored: maps to ignore_label, contributes nothing


def test_inference_shape_and_calibration(model):
    model.eval()
    inputs = batch(h=30, w=44, n=2, with_labels=False)
    with torch.no_grad():
        raw = model(inputs)
        model.calibration_gamma = 1.5
        calibrated = model(inputs)
    assert raw[0]["sem_seg"].shape == (21, 30, 44)
    diff = raw[0]["sem_seg"] - calibrated[0]["sem_seg"]
    seen = model.seen_mask
    assert torch.allclose(diff[seen], torch.full_like(diff[seen], 1.5))
    assert torch.allclose(diff[~seen], torch.zeros_like(diff[~seen]))


def test_vocabulary_change_at_test_time(model):
    model.eval()
    model.set_vocabulary(Vocabulary.unseen_only(["cat", "dog", "horse"]))
    with torch.no_grad():
        out = model(batch(with_labels=False))
    assert out[0]["sem_seg"].shape[0] == 3
    assert not any("class_embeddings" in k for k in model.state_dict())


def test_folded_projection_equals_explicit_product():
    torch.manual_seed(0)
    aspp = SummedASPP(8, 20, dilations=[1, 2])
    x, proj = torch.randn(2, 8, 9, 9), torch.randn(5, 20)
    explicit = torch.einsum("bdhw,kd->bkhw", aspp(x), proj)
    assert torch.allclose(aspp(x, proj), explicit, atol=1e-5)


def test_loss_at_feature_resolution(tiny_benchmark):
    torch.manual_seed(0)
    model = build_model(make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS,
                                 "MODEL.SPNET.LOSS_AT_FEATURE_RESOLUTION", "True")).eval()
    images = torch.randn(2, 3, 32, 40)
    targets = torch.randint(0, 16, (2, 32, 40))
    targets[:, :4] = 255
    seen_ids = model.seen_mask.nonzero().squeeze(1)
    with torch.no_grad():
        scores = model.class_scores(images, seen_ids)  # (2, S, h, w)
        stride = images.shape[-1] // scores.shape[-1]
        assert stride > 1 and scores.shape[-2:] == (32 // stride, 40 // stride)
        expected = torch.nn.functional.cross_entropy(
            scores, model.train_label_map[targets[:, ::stride, ::stride]], ignore_index=model.ignore_label)
        assert model.losses(images, targets)["loss_ce"].item() == pytest.approx(expected.item(), rel=1e-5)
        model.loss_at_feature_resolution = False
        assert model.losses(images, targets)["loss_ce"].item() != pytest.approx(expected.item(), rel=1e-3)
