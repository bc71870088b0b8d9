#!/usr/bin/env python3
"""Keep only the backbone of a trained checkpoint, to start other models from it (as from ImageNet weights).

    python tools/extract_backbone.py output/pretrain_synthetic_backbone/model_final.pth backbone.pth [--overwrite]

Writes ``{"model": {"backbone.*": tensor}}`` with float32 tensors and no optimizer or trainer state, so every
meta-architecture whose backbone is built from the same config loads it with no unexpected keys.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

logger = logging.getLogger("extract_backbone")

PREFIX = "backbone."


def backbone_state(path: Path) -> dict[str, torch.Tensor]:
    """The ``backbone.*`` tensors of a Detectron2 checkpoint (a state dict, or one under ``"model"``)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state dict (expected a dict of tensors, or one under 'model')")
    backbone = {k: v.detach().float().clone() for k, v in state.items()
                if k.startswith(PREFIX) and isinstance(v, torch.Tensor)}
    if not backbone:
        raise ValueError(f"{path} has no '{PREFIX}*' parameters (its keys start with "
                         f"{sorted({k.split('.')[0] for k in state})})")
    return backbone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="Detectron2 checkpoint, e.g. model_final.pth")
    parser.add_argument("output", type=Path, help="backbone-only .pth for MODEL.WEIGHTS")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.input.is_file():
        parser.error(f"input checkpoint not found: {args.input}")
    if args.output.exists() and not args.overwrite:
        parser.error(f"output {args.output} exists; pass --overwrite to replace it")
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
