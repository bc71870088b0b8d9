"""Fixtures for the embedding tests: the tiny open_clip architecture and a saved checkpoint of it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

TINY_CLIP_JSON = Path(__file__).resolve().parent.parent / "fixtures" / "tiny_clip.json"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """state_dict of a randomly initialised tiny CLIP (seed 0), saved as a local .pt file."""
    from zegcag.embeddings import load_open_clip

    torch.manual_seed(0)
    model = load_open_clip(TINY_CLIP_JSON.stem, "", str(TINY_CLIP_JSON)).model
    path = tmp_path_factory.mktemp("clip") / "tiny_clip_seed0.pt"
    torch.save(model.state_dict(), path)
    return path
