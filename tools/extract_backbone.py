#!/usr/bin/env python3
"""Keep only the backbone of a trained checkpoint, to start other models from it (as from ImageNet weights).

    python tools/extract_backbone.py output/pretrain_synthetic_backbone/model_final.pth backbone.pth [--overwrite]

Writes ``{"model": {"backbone.*": tensor}}`` with floating-point tensors as float32 (integer buffers such as
BatchNorm's step count keep their type) and no optimizer or trainer state, so every
meta-architecture whose backbone is built from the same config loads it with no unexpected keys.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from zegcag.utils.checkpoint_files import checkpoint_tool_args, read_state_dict

logger = logging.getLogger("extract_backbone")

PREFIX = "backbone."


def backbone_state(path: Path) -> dict[str, torch.Tensor]:
    """The ``backbone.*`` tensors of a Detectron2 checkpoint (a state dict, or one under ``"model"``)."""
    state = read_state_dict(path)
    backbone = {k: (v.float() if v.is_floating_point() else v).detach().clone()
                for k, v in state.items() if k.startswith(PREFIX)}
    if not backbone:
        raise ValueError(f"{path} has no '{PREFIX}*' parameters (its keys start with "
                         f"{sorted({k.split('.')[0] for k in state})})")
    return backbone


def main(argv: list[str] | None = None) -> int:
    parser, args = checkpoint_tool_args(__doc__.split("\n\n")[0], "Detectron2 checkpoint, e.g. model_final.pth",
                                        "backbone-only .pth for MODEL.WEIGHTS", argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        backbone = backbone_state(args.input)
    except ValueError as e:
        parser.error(str(e))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": backbone, "__author__": f"zegcag extract_backbone from {args.input.name}"}, args.output)
    logger.info("kept %d backbone tensors (%d parameters) -> %s", len(backbone),
                sum(v.numel() for v in backbone.values()), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
