"""PASCAL-Context: ``context_59_zs3_{train,val}_sem_seg`` (59 classes, ZS3Net 4-unseen split) and
``context_33_zs3_{train,val}_sem_seg`` (the 33-class subset of SPNet/CaGNet).

Folders: ``<root>/zs3_<split>/{images,labels}/{train,val}/`` written by datasets/prepare_context.py
(datasets/README.md). Nothing is read before a dataset is loaded.
"""
from __future__ import annotations

from pathlib import Path

from .register_zs3_sem_seg import register_prepared_splits

# split name -> arguments of datasets/prepare_context.py that write it
CONTEXT_SPLITS = {
    "context_59": "--raw-dir VOCdevkit/VOC2010 --classes 59",
    "context_33": "--raw-dir VOCdevkit/VOC2010 --classes 33",
}


def register_all_context(root: Path, *, name_suffix: str = "") -> list[str]:
    """Register ``<split>_zs3_{train,val}_sem_seg<name_suffix>`` for each split of CONTEXT_SPLITS."""
    return register_prepared_splits(root, CONTEXT_SPLITS, "prepare_context.py", name_suffix=name_suffix)
