"""Reading checkpoint files and the command line shared by the checkpoint tools (convert, extract)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import torch

__all__ = ["checkpoint_tool_args", "read_state_dict"]


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The ``{name: tensor}`` of a checkpoint file: the file's dict itself, or the one under ``"model"``."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict (expected a dict of tensors, or one under 'model')")
    return state


def checkpoint_tool_args(description: str, input_help: str, output_help: str,
                         argv: Sequence[str] | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Parse ``input output [--overwrite]``; exit with a clear message when the input is missing or the output
    exists without ``--overwrite``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input", type=Path, help=input_help)
    parser.add_argument("output", type=Path, help=output_help)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    if not args.input.is_file():
        parser.error(f"input checkpoint not found: {args.input}")
    if args.output.exists() and not args.overwrite:
        parser.error(f"output {args.output} exists; pass --overwrite to replace it")
    return parser, args
