"""ZegFormer on CPU: training losses, inference variants, vocabulary change, calibration, bad inputs."""
from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_backbone, build_model, build_sem_seg_head

from zegcag.embeddings import build_class_embedder
from zegcag.modeling import Vocabulary
from zegformer_testing import TINY_CLIP_OPTS, tiny_zegformer_cfg

NUM_CLASSES = 21  # synthetic split: 16 seen, 5 unseen


def batch(h=32, w=40, n=2, with_labels=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        x = {"image": torch.randint(0, 255, (3, h, w), generator=g, dtype=torch.uint8), "height": h, "width": w}
        if with_labels:
            x["sem_seg"] = torch.randint(0, NUM_CLASSES, (h, w), generator=g)
            x["sem_seg"][:4] = 255
        out.append(x)
    return out


@pytest.fixture
def model(tiny_benchmark):
    torch.manual_seed(0)
    return build_model(tiny_zegformer_cfg())


@pytest.fixture(scope="module")
def clip_model(tiny_benchmark):
    torch.manual_seed(0)
    # temperature 1: an untrained model then gives class probabilities well above zero
    net = build_model(tiny_zegformer_cfg(*TINY_CLIP_OPTS, "MODEL.ZEGFORMER.INFERENCE_MODE", "fusion",
                                         "MODEL.ZEGFORMER.TEMPERATURE", "1.0"))
    return net.eval()


def test_forward_backward(model):
    model.train()
    losses = model(batch())
    assert set(losses) == {f"loss_{n}{s}" for n in ("ce", "mask", "dice") for s in ("", "_0")}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for param in (model.backbone.layers[0].weight, model.head.pixel_decoder.mask_features.weight,
                  model.head.transformer_decoder.query_embed.weight,
                  model.head.segment_classifier.no_object_embedding, model.head.mask_embed.layers[0].weight):
        assert param.grad is not None and param.grad.abs().sum() > 0


def test_training_uses_seen_classes_only(model):
    model.train()
    x = batch(n=1)
    x[0]["sem_seg"][:] = 17  # unseen 'sheep': ignored, so no mask is a target
    losses = model(x)
    assert losses["loss_mask"].item() == 0 and losses["loss_dice"].item() == 0
    x[0]["sem_seg"][:] = 300
    with pytest.raises(ValueError, match="outside"):
        model(x)


def test_seg_inference_shape_and_calibration(model):
    model.eval()
    inputs = batch(h=30, w=44, with_labels=False)
    inputs[1]["height"], inputs[1]["width"] = 60, 88
    with torch.no_grad():
        raw = model(inputs)
        model.calibration_gamma = 1.5
        calibrated = model(inputs)
    assert raw[0]["sem_seg"].shape == (NUM_CLASSES, 30, 44) and raw[1]["sem_seg"].shape == (NUM_CLASSES, 60, 88)
    diff = raw[0]["sem_seg"] - calibrated[0]["sem_seg"]
    seen = model.seen_mask
    assert seen.sum() == 16
    assert torch.allclose(diff[seen], torch.full_like(diff[seen], 1.5))
    assert torch.allclose(diff[~seen], torch.zeros_like(diff[~seen]))
    assert (raw[0]["sem_seg"] >= 0).all()  # sums of probabilities x sigmoids


def test_vocabulary_change_at_test_time(model):
    model.eval()
    keys = set(model.state_dict())
    model.set_vocabulary(Vocabulary.unseen_only(["cat", "dog", "horse"]))
    with torch.no_grad():
        out = model(batch(with_labels=False))
    assert out[0]["sem_seg"].shape == (3, 32, 40)
    assert set(model.state_dict()) == keys
    assert not any("class_embeddings" in k or "clip" in k for k in keys)


def test_img_and_fusion_inference(clip_model):
    inputs = batch(h=30, w=44, with_labels=False)
    seen = clip_model.seen_mask
    assert clip_model.image_branch.text_embedder.load() is clip_model.class_embedder.load()  # one CLIP
    outputs = {}
    with torch.no_grad():
        for mode in ("seg", "img", "fusion"):
            clip_model.inference_mode = mode
            clip_model.fusion_lambda = 1.0
            outputs[mode] = clip_model(inputs)[0]["sem_seg"]
    for out in outputs.values():
        assert out.shape == (NUM_CLASSES, 30, 44) and torch.isfinite(out).all()
    assert outputs["seg"].min() > 1e-3
    assert not torch.allclose(outputs["img"], outputs["seg"], rtol=1e-3, atol=0)
    # lambda = 1: seen classes from the segment head alone, unseen classes from the CLIP branch alone
    assert torch.allclose(outputs["fusion"][seen], outputs["seg"][seen], rtol=1e-5, atol=0)
    assert torch.allclose(outputs["fusion"][~seen], outputs["img"][~seen], rtol=1e-5, atol=0)
    assert not torch.allclose(outputs["fusion"][~seen], outputs["seg"][~seen], rtol=1e-3, atol=0)


def test_clip_topk(clip_model):
    inputs = batch(with_labels=False, n=1)
    clip_model.inference_mode, clip_model.fusion_lambda = "img", 2 / 3
    with torch.no_grad():
        clip_model.clip_topk = 0
        everything = clip_model(inputs)[0]["sem_seg"]
        clip_model.clip_topk = 6  # = the number of queries
        all_queries = clip_model(inputs)[0]["sem_seg"]
        clip_model.clip_topk = 2
        top2 = clip_model(inputs)[0]["sem_seg"]
        clip_model.inference_mode = "seg"
        seg = clip_model(inputs)[0]["sem_seg"]
    clip_model.clip_topk = 0
    assert torch.allclose(everything, all_queries, rtol=1e-5, atol=0)
    assert top2.shape == everything.shape
    assert not torch.allclose(top2, everything, rtol=1e-3, atol=0)
    assert not torch.allclose(top2, seg, rtol=1e-3, atol=0)


def test_head_is_registered(tiny_benchmark):
    cfg = tiny_zegformer_cfg("MODEL.SEM_SEG_HEAD.NAME", "ZegFormerHead")
    head = build_sem_seg_head(cfg, build_backbone(cfg).output_shape())
    assert head.segment_classifier.embed_dim == build_class_embedder(cfg).dim


def test_mask_pooled_classifier_with_pixel_loss(tiny_benchmark):
    torch.manual_seed(0)
    model = build_model(tiny_zegformer_cfg("MODEL.ZEGFORMER.SEGMENT_EMBEDDING", "mask_pooled",
                                           "MODEL.ZEGFORMER.PIXEL_CLASS_WEIGHT", "0.5")).train()
    x = batch()
    losses = model(x)
    assert "loss_pixel_cls" in losses and torch.isfinite(losses["loss_pixel_cls"])
    # the loss is SPNet's cross-entropy of the pooled projection on the feature grid, over the seen classes only
    seen = model.seen_mask.nonzero().squeeze(1)
    feature = torch.randn(2, model.head.segment_classifier.pooled_projection.in_features, 4, 5)
    labels = torch.full((2, 8, 10), 255, dtype=torch.long)
    labels[:, :4] = 3
    projected = model.head.segment_classifier.pooled_projection(feature.permute(0, 2, 3, 1))
    scores = (projected @ model.class_embeddings[seen].T).permute(0, 3, 1, 2)
    expected = torch.nn.functional.cross_entropy(scores[:, :, :2], torch.full((2, 2, 5), 3))
    assert torch.allclose(model.pixel_class_loss(feature, labels, seen), expected, atol=1e-5)
    assert model.pixel_class_loss(feature, torch.full_like(labels, 255), seen).item() == 0
    sum(losses.values()).backward()
    assert model.head.segment_classifier.pooled_projection.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="PIXEL_CLASS_WEIGHT.*mask_pooled"):
        build_model(tiny_zegformer_cfg("MODEL.ZEGFORMER.PIXEL_CLASS_WEIGHT", "0.5"))


@pytest.mark.parametrize("key,value,error,match", [
    ("MODEL.CLASS_EMBED.TEMPLATES", "no_such_set", KeyError, "unknown prompt template set"),
    ("MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES", "no_such_set", KeyError, "CLIP_IMAGE_TEMPLATES"),
    ("MODEL.ZEGFORMER.INFERENCE_MODE", "ensemble", ValueError, "INFERENCE_MODE"),
    ("MODEL.ZEGFORMER.CLIP_CLS_STYLE", "box", ValueError, "CLIP_CLS_STYLE"),
    ("MODEL.ZEGFORMER.NO_OBJECT_SIMILARITY", "l2", ValueError, "NO_OBJECT_SIMILARITY"),
    ("MODEL.ZEGFORMER.FUSION_LAMBDA", "1.5", ValueError, "FUSION_LAMBDA"),
    ("MODEL.ZEGFORMER.TRANSFORMER_IN_FEATURE", "res6", KeyError, "res6"),
])
def test_bad_config_values(tiny_benchmark, key, value, error, match):
    cfg = tiny_zegformer_cfg(*TINY_CLIP_OPTS, "MODEL.ZEGFORMER.INFERENCE_MODE", "fusion", key, value)
    with pytest.raises(error, match=match):
        build_model(cfg)


def test_missing_clip_weights_is_a_clear_error(tiny_benchmark, tmp_path):
    missing = tmp_path / "ViT-B-16.pt"
    cfg = tiny_zegformer_cfg("MODEL.ZEGFORMER.INFERENCE_MODE", "fusion", "MODEL.CLASS_EMBED.CLIP_MODEL", "ViT-B-16",
                             "MODEL.CLASS_EMBED.CLIP_PRETRAINED", str(missing))
    with pytest.raises(FileNotFoundError, match="CLIP_PRETRAINED.*ViT-B-16.pt"):
        build_model(cfg)


def test_bad_vocabularies(model):
    with pytest.raises(ValueError, match="empty"):
        model.set_vocabulary(Vocabulary((), frozenset()))
    with pytest.raises(ValueError, match="duplicate.*cat"):
        model.set_vocabulary(Vocabulary(("cat", "dog", "cat"), frozenset()))
    assert model.class_embeddings.shape[0] == NUM_CLASSES  # unchanged after the failures


def test_embedding_dimension_mismatch_names_both_sizes(model, tiny_benchmark):
    clip_embedder = build_class_embedder(tiny_zegformer_cfg(*TINY_CLIP_OPTS))
    model.class_embedder = clip_embedder
    with pytest.raises(ValueError, match="dimension 64 .* outputs 600"):
        model.set_vocabulary(Vocabulary.unseen_only(["cat", "dog"]))


def test_overfits_a_small_batch(tiny_benchmark):
    """Training and inference agree: a few images are learned almost perfectly (seen-class pixels)."""
    from detectron2.data import DatasetCatalog

    from zegcag.engine.trainer import build_mapper

    torch.manual_seed(0)
    cfg = tiny_zegformer_cfg("INPUT.RANDOM_FLIP", "none")
    model = build_model(cfg)
    mapper = build_mapper(cfg, is_train=True)
    inputs = [mapper(d) for d in DatasetCatalog.get("zs3_test_train")[:2]]
    optimizer = torch.optim.AdamW(model.parameters(), 2e-3)
    for _ in range(120):
        model.train()
        loss = sum(model(inputs).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        outputs = model([{"image": x["image"]} for x in inputs])
    correct = total = 0
    for x, out in zip(inputs, outputs):
        gt = x["sem_seg"]
        valid = gt != 255
        correct += (out["sem_seg"].argmax(0)[valid] == gt[valid]).sum().item()
        total += valid.sum().item()
    assert correct / total > 0.93  # background everywhere gives 0.83 on these two images


def test_switching_a_seg_model_to_clip_inference_is_a_clear_error(model):
    model.eval()
    model.inference_mode = "fusion"
    with pytest.raises(RuntimeError, match="CLIP image branch"):
        model(batch(with_labels=False, n=1))
