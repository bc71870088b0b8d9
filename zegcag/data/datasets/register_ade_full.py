"""ADE20K-Full: ``ade_full_847_zs3_{train,val}_sem_seg`` (847 classes, ZegFormer frequency split).

Folders: ``<root>/zs3_<split>/{images,labels}/{train,val}/`` written by datasets/prepare_ade_full.py
(datasets/README.md); labels are 16-bit PNGs, ignore label 65535. Nothing is read before a dataset is loaded.
"""
from __future__ import annotations

from pathlib import Path

from .register_zs3_sem_seg import register_prepared_splits

# split name -> arguments of datasets/prepare_ade_full.py that write it
ADE_FULL_SPLITS = {
    "ade_full_847": "--raw-dir ADE20K_2021_17_01",
}


def register_all_ade_full(root: Path, *, name_suffix: str = "") -> list[str]:
    """Register ``<split>_zs3_{train,val}_sem_seg<name_suffix>`` for each split of ADE_FULL_SPLITS."""
    return register_prepared_splits(root, ADE_FULL_SPLITS, "prepare_ade_full.py", name_suffix=name_suffix)
