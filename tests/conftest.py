"""Shared fixtures: CPU only, one thread, a tiny generated synthetic benchmark registered as zs3_test_*."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from zegcag_testing import TEST_DATASET  # noqa: E402


@pytest.fixture(scope="session")
def tiny_benchmark(tmp_path_factory) -> Path:
    """A small synthetic benchmark (32x32 images) registered as zs3_test_{train,val,calib}."""
    from detectron2.data import DatasetCatalog

    from zegcag.data.datasets import load_split, register_zs3_sem_seg
    from zegcag.data.synthetic import SyntheticBenchmarkConfig, generate_benchmark

    root = tmp_path_factory.mktemp("datasets")
    folder = generate_benchmark(root, SyntheticBenchmarkConfig(image_size=32, num_train=24, num_val=8, num_calib=8))
    if f"{TEST_DATASET}_train" not in DatasetCatalog.list():
        for part in ("train", "val", "calib"):
            register_zs3_sem_seg(f"{TEST_DATASET}_{part}", load_split("synthetic"), folder / "images" / part,
                                 folder / "labels" / part, prepare_hint="(test fixture)", image_ext=".png")
    return folder
