"""The built-in synthetic zero-shot benchmark (see datasets/README.md and zegcag/data/synthetic.py).

Registered names: ``zs3_synthetic_{train,val,calib}`` (scene seed 0, folder ``zs3_synthetic``) and
``zs3_synthetic_s{N}_{train,val,calib}`` for scene seeds 1..REGISTERED_SEEDS-1 (folder ``zs3_synthetic_sN``).
``calib`` is a held-out split for choosing the calibration gamma, disjoint from ``val``.
"""
from __future__ import annotations

from pathlib import Path

from .register_zs3_sem_seg import register_zs3_sem_seg
from .splits import load_split

SYNTHETIC_SPLITS = ("train", "val", "calib")
REGISTERED_SEEDS = 3


def synthetic_folder_name(seed: int) -> str:
    return "zs3_synthetic" if seed == 0 else f"zs3_synthetic_s{seed}"


def register_all_synthetic(root: Path) -> None:
    split = load_split("synthetic")
    for seed in range(REGISTERED_SEEDS):
        folder = Path(root) / synthetic_folder_name(seed)
        for part in SYNTHETIC_SPLITS:
            register_zs3_sem_seg(
                f"{synthetic_folder_name(seed)}_{part}",
                split,
                folder / "images" / part,
                folder / "labels" / part,
                prepare_hint=f"python datasets/prepare_synthetic.py --seed {seed}",
                image_ext=".png",
            )
