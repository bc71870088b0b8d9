"""Every config key zegcag adds to Detectron2's, with its default and what it means."""
from __future__ import annotations

from detectron2.config import CfgNode as CN


def add_zegcag_config(cfg: CN) -> None:
    """Add zegcag's keys to a Detectron2 config (call after ``add_deeplab_config``)."""
    # ---- data: zero-shot protocol -------------------------------------------------------
    cfg.DATASETS.ZS3 = CN()
    # Class names that replace the dataset's own unseen list (empty: use the dataset's split).
    cfg.DATASETS.ZS3.UNSEEN_CLASSES = []
    # Training images with unseen pixels: "ignore" labels them ignore_label, "drop" removes the image.
    cfg.DATASETS.ZS3.UNSEEN_POLICY = "ignore"
    # Train on every class, unseen included: the supervised upper bound, not a zero-shot run.
    cfg.DATASETS.ZS3.TRAIN_ON_ALL_CLASSES = False

    # Which dataset mapper builds training inputs ("zs3_semantic": image + dense label map).
    cfg.INPUT.DATASET_MAPPER_NAME = "zs3_semantic"
    # SSD-style photometric distortion in training.
    cfg.INPUT.COLOR_AUG_SSD = False

    # ---- class embeddings ---------------------------------------------------------------
    cfg.MODEL.CLASS_EMBED = CN()
    # Provider registered in EMBEDDER_REGISTRY: "word2vec", "fasttext", "w2v+ft" or "clip".
    cfg.MODEL.CLASS_EMBED.PROVIDER = "w2v+ft"
    # open_clip architecture name (provider "clip").
    cfg.MODEL.CLASS_EMBED.CLIP_MODEL = "ViT-B-16"
    # open_clip pretrained tag (e.g. "openai") or a local checkpoint path; "" = random init (tests only).
    cfg.MODEL.CLASS_EMBED.CLIP_PRETRAINED = "openai"
    # Optional JSON file of a custom open_clip architecture, registered under its file stem.
    cfg.MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG = ""
    # Prompt-template set for the text encoder: "single", "imagenet_select" or "imagenet".
    cfg.MODEL.CLASS_EMBED.TEMPLATES = "single"
    # Directory of the on-disk embedding cache ("" = $ZEGCAG_CACHE or ~/.cache/zegcag/embeddings).
    cfg.MODEL.CLASS_EMBED.CACHE_DIR = ""

    # ---- small CPU backbone (synthetic benchmark) ---------------------------------------
    cfg.MODEL.SMALL_CONVNET = CN()
    # Output channels of each 3x3 conv + norm + ReLU layer.
    cfg.MODEL.SMALL_CONVNET.CHANNELS = [32, 64, 64, 64, 64]
    # Stride of each layer (the product is the output stride).
    cfg.MODEL.SMALL_CONVNET.STRIDES = [1, 2, 1, 1, 1]
    # Dilation of each layer.
    cfg.MODEL.SMALL_CONVNET.DILATIONS = [1, 1, 1, 2, 1]
    # Normalisation layer ("BN", "GN", "" for none).
    cfg.MODEL.SMALL_CONVNET.NORM = "BN"

    # ---- SPNet baseline -----------------------------------------------------------------
    cfg.MODEL.SPNET = CN()
    # Backbone feature projected into the class-embedding space.
    cfg.MODEL.SPNET.IN_FEATURE = "res5"
    # Dilations of the DeepLab-v2 summed-ASPP projection (empty: a single 1x1 conv).
    cfg.MODEL.SPNET.ASPP_DILATIONS = []
    # Calibration gamma subtracted from seen-class scores at inference (0 = off).
    cfg.MODEL.SPNET.CALIBRATION_GAMMA = 0.0

    # ---- optimisation -------------------------------------------------------------------
    # "SGD" or "ADAMW".
    cfg.SOLVER.OPTIMIZER = "SGD"
    # Learning-rate multiplier of backbone parameters.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 1.0

    # ---- generalized zero-shot evaluation -------------------------------------------------
    cfg.TEST.GZS3 = CN()
    # Also compute boundary precision / recall / F of the predicted grouping (slower).
    cfg.TEST.GZS3.BOUNDARY = False
    # Boundary match tolerance as a fraction of the image diagonal.
    cfg.TEST.GZS3.BOUNDARY_MAX_DIST_RATIO = 0.0075
    # Write one PNG of predicted class ids per image under OUTPUT_DIR/inference/predictions.
    cfg.TEST.GZS3.WRITE_PREDICTIONS = False
    # After training, choose the calibration gamma maximising hIoU on this dataset ("" = keep the config's).
    cfg.TEST.GZS3.CALIBRATION_DATASET = ""
    # Candidate gammas of that search.
    cfg.TEST.GZS3.CALIBRATION_GAMMAS = [0.25 * i for i in range(41)]
