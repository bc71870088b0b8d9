"""Fixtures for the demo / Predictor tests: tiny SPNet checkpoints (random weights) and generated images."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from demo_testing import CLIP_OPTS, GAMMA, TINY_MODEL_OPTS, save_random_spnet
from zegcag_testing import REPO


@pytest.fixture(scope="session")
def spnet_weights(tmp_path_factory) -> Path:
    """Tiny word-vector SPNet with a calibration.json (gamma 0.5) beside it."""
    return save_random_spnet(tmp_path_factory.mktemp("spnet"), TINY_MODEL_OPTS, GAMMA)


@pytest.fixture(scope="session")
def clip_spnet_weights(tmp_path_factory) -> Path:
    """Tiny SPNet over the tiny random CLIP text encoder (any class name can be embedded)."""
    return save_random_spnet(tmp_path_factory.mktemp("spnet_clip"), {**TINY_MODEL_OPTS, **CLIP_OPTS}, None)


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """Three 32x48 BGR PNGs of smooth random colour fields (distinct stems)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(3):
        small = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"scene{i}.png"), cv2.resize(small, (48, 32), interpolation=cv2.INTER_LINEAR))
    return folder


@pytest.fixture(scope="session")
def demo_module():
    spec = importlib.util.spec_from_file_location("zegcag_demo", REPO / "demo/demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
