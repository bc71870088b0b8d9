"""COCO-Stuff 164k: ``coco_stuff_171_zs3_{train,val}_sem_seg`` (171 classes; ZegFormer) and
``coco_stuff_182_zs3_{train,val}_sem_seg`` (the 182-id space; CaGNet/SPNet).

Folders: ``<root>/zs3_<split>/{images,labels}/{train,val}/`` written by datasets/prepare_coco_stuff.py
(datasets/README.md). Nothing is read before a dataset is loaded.
"""
from __future__ import annotations

from pathlib import Path

from .register_zs3_sem_seg import register_prepared_splits

# split name -> arguments of datasets/prepare_coco_stuff.py that write it
COCO_STUFF_SPLITS = {
    "coco_stuff_171": "--raw-dir coco --variant 171",
    "coco_stuff_182": "--raw-dir coco --variant 182",
}


def register_all_coco_stuff(root: Path, *, name_suffix: str = "") -> list[str]:
    """Register ``<split>_zs3_{train,val}_sem_seg<name_suffix>`` for each split of COCO_STUFF_SPLITS."""
    return register_prepared_splits(root, COCO_STUFF_SPLITS, "prepare_coco_stuff.py", name_suffix=name_suffix)
