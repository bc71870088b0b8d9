"""The built-in synthetic zero-shot benchmark (see datasets/README.md and zegcag/data/synthetic.py).

Registered names: ``zs3_synthetic_{train,val,calib}`` (scene seed 0, folder ``zs3_synthetic``) and
``zs3_synthetic_s{N}_{train,val,calib}`` for scene seeds 1..REGISTERED_SEEDS-1 (folder ``zs3_synthetic_sN``);
``zs3_synthetic_coco_{train,val,calib}``: the same construction over the 171 COCO-Stuff classes (split
``synthetic_coco``: 157 seen with the background, 15 unseen).
``calib`` is a held-out split for choosing the calibration gamma, disjoint from ``val``.
"""
from __future__ import annotations

from pathlib import Path

from .register_zs3_sem_seg import register_zs3_sem_seg
from .splits import load_split

SYNTHETIC_SPLITS = ("train", "val", "calib")
REGISTERED_SEEDS = 3
# class set (split name) -> (datasets folder prefix, prepare_synthetic.py --classes value)
CLASS_SETS = {"synthetic": ("zs3_synthetic", "voc"), "synthetic_coco": ("zs3_synthetic_coco", "coco")}


def synthetic_folder_name(seed: int, split_name: str = "synthetic") -> str:
    if split_name not in CLASS_SETS:
        raise ValueError(f"unknown synthetic class set {split_name!r}; choose among {sorted(CLASS_SETS)}")
    prefix = CLASS_SETS[split_name][0]
    return prefix if seed == 0 else f"{prefix}_s{seed}"


def register_all_synthetic(root: Path) -> None:
    variants = [("synthetic", seed) for seed in range(REGISTERED_SEEDS)] + [("synthetic_coco", 0)]
    for split_name, seed in variants:
        split = load_split(split_name)
        name = synthetic_folder_name(seed, split_name)
        folder = Path(root) / name
        hint = f"python datasets/prepare_synthetic.py --seed {seed} --classes {CLASS_SETS[split_name][1]}"
        for part in SYNTHETIC_SPLITS:
            register_zs3_sem_seg(f"{name}_{part}", split, folder / "images" / part, folder / "labels" / part,
                                 prepare_hint=hint, image_ext=".png")
