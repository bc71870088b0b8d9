"""PASCAL VOC 2012: ``voc_zs3_{train,val}_sem_seg`` (20 classes, background ignored; SPNet/ZegFormer)
and ``voc_bg_zs3_{train,val}_sem_seg`` (21 classes, background = seen class 0).

Folders: ``<root>/zs3_<split>/{images,labels}/{train,val}/`` written by datasets/prepare_voc.py
(datasets/README.md). Nothing is read before a dataset is loaded.
"""
from __future__ import annotations

from pathlib import Path

from .register_zs3_sem_seg import register_prepared_splits

# split name -> arguments of datasets/prepare_voc.py that write it
VOC_SPLITS = {
    "voc": "--raw-dir VOCdevkit/VOC2012",
    "voc_bg": "--raw-dir VOCdevkit/VOC2012 --background",
}


def register_all_voc(root: Path, *, name_suffix: str = "") -> list[str]:
    """Register ``<split>_zs3_{train,val}_sem_seg<name_suffix>`` for each split of VOC_SPLITS."""
    return register_prepared_splits(root, VOC_SPLITS, "prepare_voc.py", name_suffix=name_suffix)
