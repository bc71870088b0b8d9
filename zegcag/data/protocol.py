"""The zero-shot protocol: which classes a run treats as unseen, and what training may see of them."""
from __future__ import annotations

import logging
from typing import Iterable, Sequence

import numpy as np
from detectron2.data import MetadataCatalog

from .datasets.splits import ZS3Split, make_split
from .label_io import read_label

logger = logging.getLogger(__name__)

UNSEEN_POLICIES = ("ignore", "drop")


def resolve_split(cfg, dataset_name: str) -> ZS3Split:
    """The split of ``dataset_name``, with ``DATASETS.ZS3.UNSEEN_CLASSES`` (class names) applied if set."""
    meta = MetadataCatalog.get(dataset_name)
    if not hasattr(meta, "stuff_classes") or not hasattr(meta, "unseen_classes"):
        raise KeyError(
            f"dataset '{dataset_name}' is not a registered zero-shot dataset (no stuff_classes/unseen_classes "
            f"metadata); registered zero-shot datasets: {zs3_dataset_names()}"
        )
    split = make_split(meta.get("split_name", dataset_name), meta.stuff_classes, meta.unseen_classes, meta.ignore_label)
    override = list(cfg.DATASETS.ZS3.UNSEEN_CLASSES)
    if override:
        try:
            split = split.with_unseen(override)
        except ValueError as e:
            raise ValueError(f"DATASETS.ZS3.UNSEEN_CLASSES: {e}") from None
    return split


def training_classes(cfg, split: ZS3Split) -> tuple[int, ...]:
    """Class ids whose labels training may use: the seen ones (all of them for the supervised upper bound)."""
    return tuple(range(split.num_classes)) if cfg.DATASETS.ZS3.TRAIN_ON_ALL_CLASSES else split.seen


def zs3_dataset_names() -> list[str]:
    from detectron2.data import DatasetCatalog

    return [n for n in DatasetCatalog.list() if MetadataCatalog.get(n).get("evaluator_type") == "gzs3_sem_seg"]


def check_unseen_policy(policy: str) -> str:
    if policy not in UNSEEN_POLICIES:
        raise ValueError(f"DATASETS.ZS3.UNSEEN_POLICY must be one of {UNSEEN_POLICIES}, got '{policy}'")
    return policy


def drop_images_with_classes(dataset_dicts: Sequence[dict], classes: Iterable[int]) -> list[dict]:
    """Keep the images whose label map contains none of ``classes`` (reads every label once)."""
    classes = np.asarray(sorted(classes))
    kept = [d for d in dataset_dicts if not np.isin(read_label(d["sem_seg_file_name"]), classes).any()]
    logger.info(f"unseen policy 'drop': kept {len(kept)} of {len(dataset_dicts)} training images")
    return kept
