"""Tiny ZegFormer configs for the tests of this folder (CPU, a few seconds each)."""
from __future__ import annotations

from zegcag_testing import REPO, TEST_DATASET, make_cfg

TINY_CLIP_JSON = REPO / "tests" / "fixtures" / "tiny_clip.json"

TINY_ZEGFORMER_OPTS = (
    "DATASETS.TRAIN", f"('{TEST_DATASET}_train',)",
    "DATASETS.TEST", f"('{TEST_DATASET}_val',)",
    "TEST.GZS3.CALIBRATION_DATASET", f"{TEST_DATASET}_calib",
    "MODEL.SMALL_CONVNET.CHANNELS", "[8, 16]",
    "MODEL.SMALL_CONVNET.STRIDES", "[1, 2]",
    "MODEL.SMALL_CONVNET.DILATIONS", "[1, 1]",
    "MODEL.ZEGFORMER.CONVS_DIM", "16",
    "MODEL.ZEGFORMER.MASK_DIM", "16",
    "MODEL.ZEGFORMER.NORM", "",  # GroupNorm(32) cannot normalise 16 channels
    "MODEL.ZEGFORMER.HIDDEN_DIM", "16",
    "MODEL.ZEGFORMER.NUM_OBJECT_QUERIES", "6",
    "MODEL.ZEGFORMER.NHEADS", "2",
    "MODEL.ZEGFORMER.DIM_FEEDFORWARD", "32",
    "MODEL.ZEGFORMER.DEC_LAYERS", "2",
    "INPUT.MIN_SIZE_TRAIN", "(32,)",
    "INPUT.MAX_SIZE_TRAIN", "32",
    "SOLVER.IMS_PER_BATCH", "4",
    "SOLVER.MAX_ITER", "4",
    "SOLVER.CHECKPOINT_PERIOD", "2",
    "DATALOADER.NUM_WORKERS", "0",
)

# The official architecture (tiny ResNet, FPN over res2-res5) in place of the synthetic config's small convnet.
TINY_RESNET_OPTS = (
    "MODEL.BACKBONE.NAME", "build_resnet_backbone",
    "MODEL.RESNETS.DEPTH", "50",
    "MODEL.RESNETS.NORM", "BN",
    "MODEL.RESNETS.STEM_OUT_CHANNELS", "8",
    "MODEL.RESNETS.RES2_OUT_CHANNELS", "16",
    "MODEL.RESNETS.WIDTH_PER_GROUP", "4",
    "MODEL.ZEGFORMER.IN_FEATURES", "['res2', 'res3', 'res4', 'res5']",
    "MODEL.ZEGFORMER.TRANSFORMER_IN_FEATURE", "res5",
    "MODEL.ZEGFORMER.CONVS_DIM", "32",
    "MODEL.ZEGFORMER.MASK_DIM", "32",
)

# Class embeddings and the image branch from the randomly initialised tiny open_clip model.
TINY_CLIP_OPTS = (
    "MODEL.CLASS_EMBED.PROVIDER", "clip",
    "MODEL.CLASS_EMBED.CLIP_MODEL", TINY_CLIP_JSON.stem,
    "MODEL.CLASS_EMBED.CLIP_PRETRAINED", "",
    "MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG", str(TINY_CLIP_JSON),
    "MODEL.CLASS_EMBED.TEMPLATES", "single",
)


def tiny_zegformer_cfg(*opts: str):
    """configs/zegformer_synthetic.yaml shrunk for tests, on the zs3_test_* benchmark, plus overrides."""
    return make_cfg("configs/zegformer_synthetic.yaml", *TINY_ZEGFORMER_OPTS, *opts)
