#!/usr/bin/env python3
"""Convert an official ZegFormer checkpoint (github.com/dingjiansw101/ZegFormer, MaskFormer-based) to zegcag.

    python tools/convert_zegformer_checkpoint.py official.pth zegformer_zegcag.pth [--overwrite]

Parameter names are renamed (shapes are identical); the CLIP model, the fixed logit scale and the criterion's
class weights are dropped (zegcag loads CLIP through open_clip and takes the temperature from the config).
Official checkpoints score no-object with an unnormalised dot product: evaluate them with
MODEL.ZEGFORMER.NO_OBJECT_SIMILARITY dot, and the class-embedding provider the script reports.
"""
from __future__ import annotations

import logging
import math
import re
import sys
from pathlib import Path
from typing import Mapping

import torch

from zegcag.utils.checkpoint_files import checkpoint_tool_args, read_state_dict

logger = logging.getLogger("convert_zegformer_checkpoint")

PREDICTOR = "sem_seg_head.predictor."
HEAD, PRED = re.escape("sem_seg_head."), re.escape(PREDICTOR)
# (official pattern, zegcag replacement), first match wins; every other key is an error.
RENAMES = [
    (r"^backbone\.", "backbone."),
    (rf"^{HEAD}pixel_decoder\.adapter_(\d+)\.", lambda m: f"head.pixel_decoder.lateral_convs.{int(m[1]) - 1}."),
    (rf"^{HEAD}pixel_decoder\.layer_(\d+)\.", lambda m: f"head.pixel_decoder.output_convs.{int(m[1]) - 1}."),
    (rf"^{HEAD}pixel_decoder\.mask_features\.", "head.pixel_decoder.mask_features."),
    (rf"^{PRED}input_proj\.", "head.transformer_decoder.input_proj."),
    (rf"^{PRED}query_embed\.", "head.transformer_decoder.query_embed."),
    (rf"^{PRED}transformer\.decoder\.layers\.(\d+)\.multihead_attn\.",
     lambda m: f"head.transformer_decoder.layers.{m[1]}.cross_attn."),
    (rf"^{PRED}transformer\.decoder\.layers\.(\d+)\.", lambda m: f"head.transformer_decoder.layers.{m[1]}."),
    (rf"^{PRED}transformer\.decoder\.norm\.", "head.transformer_decoder.norm."),
    # pre-norm models (PRE_NORM True) keep DETR's final encoder norm on the memory, even with 0 encoder layers
    (rf"^{PRED}transformer\.encoder\.norm\.", "head.transformer_decoder.memory_norm."),
    (rf"^{PRED}mask_embed\.", "head.mask_embed."),
    (rf"^{PRED}projection_layer\.", "head.segment_classifier.projection."),
    (rf"^{PRED}bg_feature$", "head.segment_classifier.no_object_embedding"),
]
DROPPED = [rf"^{PRED}clip_model\.", rf"^{PRED}logit_scale$", r"^criterion\.empty_weight$",
           r"^(clip_)?pixel_(mean|std)$"]
EMBED_DIM_HINTS = {512: "clip (CLIP ViT-B-16 text embeddings)", 600: "w2v+ft (fastText + word2vec)"}


class ConversionError(ValueError):
    """The checkpoint holds parameters this converter cannot map."""


def convert_state_dict(official: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Official ``{name: tensor}`` -> (zegcag state dict, dropped names); unknown names raise ConversionError."""
    converted, dropped, unknown = {}, [], []
    for name, value in official.items():
        if any(re.search(p, name) for p in DROPPED):
            dropped.append(name)
            continue
        for pattern, replacement in RENAMES:
            new, count = re.subn(pattern, replacement, name, count=1)
            if count:
                converted[new] = value
                break
        else:
            unknown.append(name)
    encoder = [n for n in unknown if ".transformer.encoder.layers." in n]
    if encoder:
        raise ConversionError(f"the checkpoint has transformer encoder layers ({encoder[0]}, ...); zegcag's ZegFormer "
                              "has none (official ENC_LAYERS 0)")
    if unknown:
        raise ConversionError(f"{len(unknown)} parameters of unknown name, e.g. {unknown[:5]}: not an official "
                              "ZegFormer (MaskFormer ZegFormerHead) checkpoint?")
    return converted, dropped


def describe(official: Mapping[str, torch.Tensor]) -> list[str]:
    """Config hints read off the checkpoint: embedding provider, temperature, sizes."""
    hints = []
    bg = official.get(f"{PREDICTOR}bg_feature")
    if bg is not None:
        dim = bg.shape[-1]
        hints.append(f"class-embedding dim {dim}: MODEL.CLASS_EMBED.PROVIDER {EMBED_DIM_HINTS.get(dim, '?')}")
    scale = official.get(f"{PREDICTOR}logit_scale")
    if scale is not None:
        hints.append(f"MODEL.ZEGFORMER.TEMPERATURE {math.exp(-float(scale.flatten()[0])):.4g}")
    query = official.get(f"{PREDICTOR}query_embed.weight")
    if query is not None:
        hints.append(f"MODEL.ZEGFORMER.NUM_OBJECT_QUERIES {query.shape[0]}, HIDDEN_DIM {query.shape[1]}")
    layers = {m[1] for n in official if (m := re.search(rf"^{PRED}transformer\.decoder\.layers\.(\d+)\.", n))}
    if layers:
        hints.append(f"MODEL.ZEGFORMER.DEC_LAYERS {len(layers)}")
    pre_norm = f"{PREDICTOR}transformer.encoder.norm.weight" in official
    hints.append(f"MODEL.ZEGFORMER.PRE_NORM {pre_norm}")
    hints.append("MODEL.ZEGFORMER.NO_OBJECT_SIMILARITY dot (the official no-object score)")
    return hints


def load_official(path: Path) -> dict[str, torch.Tensor]:
    try:
        return read_state_dict(path)
    except ValueError as e:
        raise ConversionError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    _, args = checkpoint_tool_args(__doc__.split("\n\n")[0], "official ZegFormer .pth",
                                   "converted .pth for MODEL.WEIGHTS", argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    official = load_official(args.input)
    converted, dropped = convert_state_dict(official)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": converted, "__author__": "zegcag convert_zegformer_checkpoint"}, args.output)
    clip = [d for d in dropped if ".clip_model." in d]
    logger.info("converted %d parameters -> %s; dropped %s%s", len(converted), args.output,
                sorted(set(dropped) - set(clip)), f" and {len(clip)} CLIP parameters" if clip else "")
    for hint in describe(official):
        logger.info("  set %s", hint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
