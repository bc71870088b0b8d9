"""Shared by the demo / Predictor tests: the tiny model options and a random-weight SPNet checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from zegcag_testing import REPO

CONFIG = str(REPO / "configs/spnet_synthetic.yaml")
TINY_CLIP_JSON = REPO / "tests/fixtures/tiny_clip.json"
# model shape only: the synthetic config's datasets are registered at import and need no files
TINY_MODEL_OPTS = {
    "MODEL.SMALL_CONVNET.CHANNELS": "[8, 8]",
    "MODEL.SMALL_CONVNET.STRIDES": "[1, 2]",
    "MODEL.SMALL_CONVNET.DILATIONS": "[1, 1]",
}
CLIP_OPTS = {
    "MODEL.CLASS_EMBED.PROVIDER": "clip",
    "MODEL.CLASS_EMBED.CLIP_MODEL": TINY_CLIP_JSON.stem,
    "MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG": str(TINY_CLIP_JSON),
    "MODEL.CLASS_EMBED.CLIP_PRETRAINED": "",
}
GAMMA = 0.5


def flat(opts: dict[str, str]) -> list[str]:
    return [x for kv in opts.items() for x in kv]


def save_random_spnet(folder: Path, opts: dict[str, str], gamma: float | None) -> Path:
    """model_final.pth of a randomly initialised SPNet (seed 0), and calibration.json if ``gamma``."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from zegcag_testing import make_cfg

    torch.manual_seed(0)
    model = build_model(make_cfg("configs/spnet_synthetic.yaml", *flat(opts)))
    folder.mkdir(parents=True, exist_ok=True)
    DetectionCheckpointer(model, save_dir=str(folder)).save("model_final")
    if gamma is not None:
        (folder / "calibration.json").write_text(json.dumps({"gamma": gamma}))
    return folder / "model_final.pth"
