"""tools/convert_zegformer_checkpoint.py: a state dict with the official ZegFormer names and shapes loads into
zegcag's ZegFormer with no missing or unexpected keys; unknown names fail; the CLI never overwrites.

The key set below is the one a real official model (MaskFormer + ZegFormerHead, built from the official code,
see docs/zegformer_equivalence.md) has in its state dict, besides the CLIP model when CLIP_CLASSIFICATION is on."""
from __future__ import annotations

import math

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model

from zegcag_testing import load_script
from zegformer_testing import TINY_RESNET_OPTS, tiny_zegformer_cfg

CONV, MASK, HIDDEN, QUERIES, FFN, LAYERS, EMBED = 32, 32, 16, 6, 32, 2, 600


def load_tool():
    return load_script("tools/convert_zegformer_checkpoint.py")


@pytest.fixture(scope="module")
def model(tiny_benchmark):
    cfg = tiny_zegformer_cfg(*TINY_RESNET_OPTS, "MODEL.ZEGFORMER.NORM", "GN", "MODEL.ZEGFORMER.CONVS_DIM", str(CONV),
                             "MODEL.ZEGFORMER.TRANSFORMER_IN_FEATURE", "res5")  # the official architecture
    return build_model(cfg)


def official_state_dict(backbone_state: dict, channels: list[int]) -> dict[str, torch.Tensor]:
    """Names and shapes of the official modules (MaskFormer BasePixelDecoder, TransformerZeroshotPredictor)."""
    g = torch.Generator().manual_seed(0)
    shapes = {f"backbone.{k}": tuple(v.shape) for k, v in backbone_state.items()}
    pd, pr = "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor."
    for i, c in enumerate(channels[:-1], start=1):  # res2..res4: lateral 1x1 + 3x3 output, GroupNorm, no bias
        shapes.update({f"{pd}adapter_{i}.weight": (CONV, c, 1, 1), f"{pd}layer_{i}.weight": (CONV, CONV, 3, 3)})
        for conv in (f"adapter_{i}", f"layer_{i}"):
            shapes.update({f"{pd}{conv}.norm.weight": (CONV,), f"{pd}{conv}.norm.bias": (CONV,)})
    last = len(channels)
    shapes.update({f"{pd}layer_{last}.weight": (CONV, channels[-1], 3, 3), f"{pd}layer_{last}.norm.weight": (CONV,),
                   f"{pd}layer_{last}.norm.bias": (CONV,), f"{pd}mask_features.weight": (MASK, CONV, 3, 3),
                   f"{pd}mask_features.bias": (MASK,)})
    shapes.update({f"{pr}input_proj.weight": (HIDDEN, channels[-1], 1, 1), f"{pr}input_proj.bias": (HIDDEN,),
                   f"{pr}query_embed.weight": (QUERIES, HIDDEN), f"{pr}bg_feature": (1, EMBED),
                   f"{pr}projection_layer.weight": (EMBED, HIDDEN), f"{pr}projection_layer.bias": (EMBED,),
                   f"{pr}transformer.decoder.norm.weight": (HIDDEN,), f"{pr}transformer.decoder.norm.bias": (HIDDEN,)})
    for layer in range(LAYERS):
        p = f"{pr}transformer.decoder.layers.{layer}."
        for attn in ("self_attn", "multihead_attn"):
            shapes.update({f"{p}{attn}.in_proj_weight": (3 * HIDDEN, HIDDEN), f"{p}{attn}.in_proj_bias": (3 * HIDDEN,),
                           f"{p}{attn}.out_proj.weight": (HIDDEN, HIDDEN), f"{p}{attn}.out_proj.bias": (HIDDEN,)})
        shapes.update({f"{p}linear1.weight": (FFN, HIDDEN), f"{p}linear1.bias": (FFN,),
                       f"{p}linear2.weight": (HIDDEN, FFN), f"{p}linear2.bias": (HIDDEN,)})
        shapes.update({f"{p}norm{n}.{w}": (HIDDEN,) for n in (1, 2, 3) for w in ("weight", "bias")})
    for i, out in enumerate((HIDDEN, HIDDEN, MASK)):
        shapes.update({f"{pr}mask_embed.layers.{i}.weight": (out, HIDDEN), f"{pr}mask_embed.layers.{i}.bias": (out,)})
    state = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    # dropped: the fixed logit scale (tau = 0.01), the CLIP model, the criterion's class weights
    state.update({f"{pr}logit_scale": torch.tensor([math.log(100.0)]), f"{pr}clip_model.visual.proj": torch.randn(4, 4),
                  "criterion.empty_weight": torch.ones(157)})
    return state


def test_official_names_load_without_missing_or_unexpected_keys(model):
    tool = load_tool()
    channels = [model.backbone.output_shape()[f].channels for f in ("res2", "res3", "res4", "res5")]
    official = official_state_dict(model.backbone.state_dict(), channels)
    converted, dropped = tool.convert_state_dict(official)
    assert len(dropped) == 3
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    pr = "sem_seg_head.predictor."
    assert torch.equal(model.head.segment_classifier.no_object_embedding, official[f"{pr}bg_feature"])
    assert torch.equal(model.head.transformer_decoder.layers[1].cross_attn.in_proj_weight,
                       official[f"{pr}transformer.decoder.layers.1.multihead_attn.in_proj_weight"])
    assert torch.equal(model.head.pixel_decoder.lateral_convs[0].weight,
                       official["sem_seg_head.pixel_decoder.adapter_1.weight"])
    assert torch.equal(model.head.pixel_decoder.output_convs[3].norm.bias,
                       official["sem_seg_head.pixel_decoder.layer_4.norm.bias"])
    hints = " | ".join(tool.describe(official))
    assert "w2v+ft" in hints and "TEMPERATURE 0.01" in hints and "DEC_LAYERS 2" in hints and "dot" in hints
    assert "PRE_NORM False" in hints


def test_pre_norm_checkpoint_keeps_the_memory_norm(tiny_benchmark):
    """Official PRE_NORM True models hold DETR's final encoder norm (with 0 encoder layers): it maps to the
    memory norm; encoder layers stay an error."""
    tool = load_tool()
    cfg = tiny_zegformer_cfg(*TINY_RESNET_OPTS, "MODEL.ZEGFORMER.NORM", "GN", "MODEL.ZEGFORMER.CONVS_DIM", str(CONV),
                             "MODEL.ZEGFORMER.TRANSFORMER_IN_FEATURE", "res5", "MODEL.ZEGFORMER.PRE_NORM", "True")
    model = build_model(cfg)
    channels = [model.backbone.output_shape()[f].channels for f in ("res2", "res3", "res4", "res5")]
    official = official_state_dict(model.backbone.state_dict(), channels)
    enc = "sem_seg_head.predictor.transformer.encoder.norm."
    official.update({f"{enc}weight": torch.rand(HIDDEN), f"{enc}bias": torch.rand(HIDDEN)})
    converted, _ = tool.convert_state_dict(official)
    result = model.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.head.transformer_decoder.memory_norm.weight, official[f"{enc}weight"])
    assert "PRE_NORM True" in " | ".join(tool.describe(official))


def test_unknown_and_encoder_keys_are_errors():
    tool = load_tool()
    with pytest.raises(tool.ConversionError, match="unknown name.*sem_seg_head.predictor.class_embed.weight"):
        tool.convert_state_dict({"sem_seg_head.predictor.class_embed.weight": torch.zeros(2)})
    with pytest.raises(tool.ConversionError, match="encoder"):
        tool.convert_state_dict({"sem_seg_head.predictor.transformer.encoder.layers.0.linear1.weight": torch.zeros(2)})


def test_cli_writes_a_loadable_checkpoint_and_never_overwrites(model, tmp_path, capsys):
    tool = load_tool()
    channels = [model.backbone.output_shape()[f].channels for f in ("res2", "res3", "res4", "res5")]
    official = official_state_dict(model.backbone.state_dict(), channels)
    src, dst = tmp_path / "official.pth", tmp_path / "converted.pth"
    torch.save({"model": official, "iteration": 59999}, src)
    assert tool.main([str(src), str(dst)]) == 0
    DetectionCheckpointer(model).load(str(dst))
    assert torch.equal(model.head.segment_classifier.projection.bias,
                       official["sem_seg_head.predictor.projection_layer.bias"])
    before = dst.read_bytes()
    with pytest.raises(SystemExit):
        tool.main([str(src), str(dst)])
    assert "--overwrite" in capsys.readouterr().err and dst.read_bytes() == before
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / "missing.pth"), str(tmp_path / "x.pth")])
