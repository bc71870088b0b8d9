"""ZegFormer head parts: position encoding, pixel decoder, query decoder, segment classifier, deep supervision."""
from __future__ import annotations

import math

import pytest
import torch
from detectron2.layers import ShapeSpec
from torch.nn import functional as F

from zegcag.modeling.zegformer.head import ZegFormerHead, mask_pooled_features
from zegcag.modeling.zegformer.pixel_decoder import FPNPixelDecoder
from zegcag.modeling.zegformer.segment_classifier import SegmentClassifier
from zegcag.modeling.zegformer.transformer_decoder import QueryTransformerDecoder, sine_position_encoding

SHAPES = {"res3": ShapeSpec(channels=12, stride=8), "res2": ShapeSpec(channels=8, stride=4),
          "res4": ShapeSpec(channels=16, stride=16)}


def features(b=2, size=64):
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(b, s.channels, size // s.stride, size // s.stride, generator=g) for k, s in SHAPES.items()}


def test_sine_position_encoding_values():
    pos = sine_position_encoding(torch.zeros(2, 5, 3, 4), num_feats=6)
    assert pos.shape == (2, 12, 3, 4)
    y, x = 2, 3  # 0-based row/column
    y_embed, x_embed = (y + 1) / 3 * 2 * math.pi, (x + 1) / 4 * 2 * math.pi
    for i in range(6):
        freq = 10000 ** (2 * (i // 2) / 6)
        fn = math.sin if i % 2 == 0 else math.cos
        assert pos[1, i, y, x].item() == pytest.approx(fn(y_embed / freq), abs=1e-5)
        assert pos[1, 6 + i, y, x].item() == pytest.approx(fn(x_embed / freq), abs=1e-5)


def test_pixel_decoder_orders_features_fine_to_coarse():
    decoder = FPNPixelDecoder(SHAPES, conv_dim=32, mask_dim=10, norm="GN")
    assert decoder.in_features == ["res2", "res3", "res4"] and decoder.stride == 4
    assert len(decoder.lateral_convs) == 2 and len(decoder.output_convs) == 3
    assert decoder(features()).shape == (2, 10, 16, 16)
    with pytest.raises(ValueError, match="IN_FEATURES"):
        FPNPixelDecoder({}, conv_dim=32, mask_dim=10)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_query_decoder_returns_every_layer(pre_norm):
    decoder = QueryTransformerDecoder(16, hidden_dim=8, num_queries=5, nheads=2, dim_feedforward=12, dec_layers=3,
                                      dropout=0.0, pre_norm=pre_norm, enforce_input_proj=False)
    out = decoder(features()["res4"])
    assert out.shape == (3, 2, 5, 8)
    # the shared final LayerNorm (identity affine at init) is applied to every layer's output
    assert torch.allclose(out.mean(-1), torch.zeros(3, 2, 5), atol=1e-5)
    with pytest.raises(ValueError, match="NHEADS"):
        QueryTransformerDecoder(16, hidden_dim=10, num_queries=5, nheads=4, dim_feedforward=12, dec_layers=1,
                                dropout=0.0, pre_norm=False, enforce_input_proj=False)


def test_pre_norm_decoder_normalises_the_memory():
    """Official pre-norm (DETR): the memory is layer-normalised, so scaling the feature map changes nothing;
    post-norm attends to the raw memory, which a scale does change."""
    feature = features()["res4"]  # 16 channels = hidden dim: no input projection
    for pre_norm in (True, False):
        torch.manual_seed(0)
        decoder = QueryTransformerDecoder(16, hidden_dim=16, num_queries=5, nheads=2, dim_feedforward=12,
                                          dec_layers=2, dropout=0.0, pre_norm=pre_norm, enforce_input_proj=False)
        assert isinstance(decoder.memory_norm, torch.nn.LayerNorm) == pre_norm
        scaled_same = torch.allclose(decoder(feature), decoder(3.0 * feature), atol=1e-4)
        assert scaled_same == pre_norm


def test_segment_classifier_cosine_logits_and_no_object():
    torch.manual_seed(0)
    classes = F.normalize(torch.randn(4, 6), dim=-1)
    queries = torch.randn(2, 3, 8)
    cosine = SegmentClassifier(8, 6, temperature=0.05, no_object_similarity="cosine")
    logits = cosine(queries, classes)
    assert logits.shape == (2, 3, 5)
    segment = F.normalize(cosine.projection(queries), dim=-1)
    assert torch.allclose(logits[..., :4], segment @ classes.T / 0.05, atol=1e-5)
    with torch.no_grad():
        cosine.no_object_embedding.mul_(50.0)
    assert logits[..., 4].abs().max() <= 1 / 0.05 + 1e-4
    assert torch.allclose(cosine(queries, classes)[..., 4], logits[..., 4], atol=1e-4)  # scale-free
    dot = SegmentClassifier(8, 6, temperature=0.05, no_object_similarity="dot")
    dot.load_state_dict(cosine.state_dict())
    expected = segment @ cosine.no_object_embedding[0] / 0.05
    assert torch.allclose(dot(queries, classes)[..., 4], expected, atol=1e-3)
    with pytest.raises(ValueError, match="TEMPERATURE"):
        SegmentClassifier(8, 6, temperature=0.0, no_object_similarity="dot")
    with pytest.raises(ValueError, match="non-empty"):
        cosine(queries, classes[:0])


def head_parts(dec_layers: int) -> dict:
    """A small head's pixel decoder and query decoder (5 queries, hidden 8) on SHAPES' res4, deep supervision."""
    return dict(
        pixel_decoder=FPNPixelDecoder(SHAPES, conv_dim=32, mask_dim=10, norm=""),
        transformer_decoder=QueryTransformerDecoder(16, hidden_dim=8, num_queries=5, nheads=2, dim_feedforward=12,
                                                    dec_layers=dec_layers, dropout=0.0, pre_norm=False,
                                                    enforce_input_proj=True),
        transformer_in_feature="res4",
        deep_supervision=True,
    )


def test_head_deep_supervision_only_in_training():
    head = ZegFormerHead(segment_classifier=SegmentClassifier(8, 6, temperature=0.01, no_object_similarity="cosine"),
                         **head_parts(dec_layers=3))
    classes = F.normalize(torch.randn(4, 6), dim=-1)
    out = head.train()(features(), classes)
    assert out["pred_logits"].shape == (2, 5, 5) and out["pred_masks"].shape == (2, 5, 16, 16)
    assert len(out["aux_outputs"]) == 2 and out["aux_outputs"][0]["pred_masks"].shape == (2, 5, 16, 16)
    evaluated = head.eval()(features(), classes)
    assert "aux_outputs" not in evaluated
    assert torch.allclose(evaluated["pred_masks"], out["pred_masks"], atol=1e-5)  # no dropout: same last layer


def test_mask_pooled_features_average_under_each_mask():
    feature = torch.zeros(1, 2, 4, 4)
    feature[0, 0, :, :2] = 3.0  # channel 0: 3 on the left half
    feature[0, 1] = torch.arange(16.0).view(4, 4)
    masks = torch.full((1, 2, 4, 4), -50.0)  # sigmoid ~ 0
    masks[0, 0, :, :2] = 50.0  # query 0: left half
    masks[0, 1] = 50.0  # query 1: whole image
    pooled = mask_pooled_features(masks, feature)
    assert pooled.shape == (1, 2, 2)
    left = torch.arange(16.0).view(4, 4)[:, :2].mean()
    assert torch.allclose(pooled[0, 0], torch.tensor([3.0, left.item()]), atol=1e-4)
    assert torch.allclose(pooled[0, 1], torch.tensor([1.5, 7.5]), atol=1e-4)
    # leading layer dim, masks at twice the feature's resolution, and no gradient into the masks
    masks = torch.randn(3, 2, 5, 8, 8, requires_grad=True)
    feature = torch.randn(2, 6, 4, 4, requires_grad=True)
    pooled = mask_pooled_features(masks, feature)
    assert pooled.shape == (3, 2, 5, 6)
    pooled.sum().backward()
    assert masks.grad is None and feature.grad is not None


def test_mask_pooled_features_ignore_low_probability_pixels_unless_the_mask_is_empty():
    feature = torch.zeros(1, 1, 8, 8)
    feature[0, 0, :2, :2] = 1.0  # a small object: 4 of 64 pixels
    masks = torch.full((1, 2, 8, 8), -3.0)  # probability ~0.05 everywhere ...
    masks[0, 0, :2, :2] = 3.0  # ... but on the object for query 0
    pooled = mask_pooled_features(masks, feature)
    # soft weights would give 4 * 0.95 / (4 * 0.95 + 60 * 0.05) = 0.56; binarised, only the object counts
    assert torch.allclose(pooled[0, 0], torch.tensor([1.0]), atol=1e-5)
    # query 1 has no pixel above 0.5: its sigmoid weights are used (uniform here -> the image mean)
    assert torch.allclose(pooled[0, 1], torch.tensor([4 / 64]), atol=1e-5)


def test_mask_pooled_classifier_takes_classes_from_pooled_and_no_object_from_query():
    torch.manual_seed(0)
    classes = F.normalize(torch.randn(4, 6), dim=-1)
    queries, pooled = torch.randn(2, 3, 8), torch.randn(2, 3, 16)
    classifier = SegmentClassifier(8, 6, temperature=0.05, no_object_similarity="cosine", pooled_dim=16)
    logits = classifier(queries, classes, pooled)
    assert logits.shape == (2, 3, 5)
    by_pooled = F.normalize(classifier.pooled_projection(pooled), dim=-1) @ classes.T / 0.05
    assert torch.allclose(logits[..., :4], by_pooled, atol=1e-5)
    query_only = SegmentClassifier(8, 6, temperature=0.05, no_object_similarity="cosine")
    query_only.load_state_dict(classifier.state_dict(), strict=False)
    assert torch.allclose(logits[..., 4], query_only(queries, classes)[..., 4], atol=1e-5)
    with pytest.raises(ValueError, match="mask_pooled"):
        classifier(queries, classes)
    with pytest.raises(ValueError, match="mask_pooled"):
        query_only(queries, classes, pooled)


def test_head_with_mask_pooled_segment_embedding():
    kwargs = head_parts(dec_layers=2)
    head = ZegFormerHead(segment_classifier=SegmentClassifier(8, 6, temperature=0.01, no_object_similarity="cosine",
                                                              pooled_dim=16),
                         segment_embedding="mask_pooled", **kwargs)
    classes = F.normalize(torch.randn(4, 6), dim=-1)
    out = head.train()(features(), classes)
    assert out["pred_logits"].shape == (2, 5, 5) and len(out["aux_outputs"]) == 1
    out["pred_logits"].sum().backward()
    assert head.segment_classifier.pooled_projection.weight.grad is not None
    with pytest.raises(ValueError, match="pooled_dim"):
        ZegFormerHead(segment_classifier=SegmentClassifier(8, 6, temperature=0.01, no_object_similarity="cosine"),
                      segment_embedding="mask_pooled", **kwargs)
    with pytest.raises(ValueError, match="SEGMENT_EMBEDDING"):
        ZegFormerHead(segment_classifier=SegmentClassifier(8, 6, temperature=0.01, no_object_similarity="cosine"),
                      segment_embedding="pooled", **kwargs)
