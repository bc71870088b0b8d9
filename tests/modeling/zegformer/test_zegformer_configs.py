"""Every ZegFormer config builds its model (tiny random CLIP in place of ViT-B/16) and runs full-model inference."""
from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_model

from zegcag_testing import make_cfg
from zegformer_testing import TINY_CLIP_OPTS


@pytest.mark.parametrize("config,num_classes,depth,gamma", [
    ("configs/zegformer_coco.yaml", 171, 101, 0.1),
    ("configs/zegformer_voc.yaml", 20, 101, 0.1),
    ("configs/zegformer_ade847.yaml", 847, 50, 0.0),
])
def test_real_dataset_config_runs_fusion_inference(config, num_classes, depth, gamma):
    cfg = make_cfg(config, *TINY_CLIP_OPTS, "MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES", "single", "MODEL.DEVICE", "cpu")
    assert cfg.MODEL.RESNETS.DEPTH == depth and cfg.MODEL.ZEGFORMER.CALIBRATION_GAMMA == gamma
    assert cfg.MODEL.ZEGFORMER.INFERENCE_MODE == "fusion" and cfg.SOLVER.OPTIMIZER == "ADAMW"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert model.head.transformer_decoder.query_embed.weight.shape == (100, 256)
    assert len(model.head.transformer_decoder.layers) == 6
    with torch.no_grad():
        out = model([{"image": torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8), "height": 32, "width": 40}])
    assert out[0]["sem_seg"].shape == (num_classes, 32, 40) and torch.isfinite(out[0]["sem_seg"]).all()
