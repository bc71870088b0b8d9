"""Dataset mapper for dense label maps under the zero-shot protocol (SPNet, CaGNet)."""
from __future__ import annotations

import copy
import logging
from typing import Sequence

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.projects.point_rend import ColorAugSSDTransform

from ..label_io import check_label_ids, class_lookup, read_label
from ..protocol import resolve_split, training_classes

logger = logging.getLogger(__name__)


def read_image(path: str, image_format: str) -> np.ndarray:
    """(H, W, 3) uint8 image; an unreadable or missing file is an error that names it."""
    try:
        return utils.read_image(path, format=image_format)
    except Exception as e:  # PIL raises several types (OSError, UnidentifiedImageError, ValueError)
        raise OSError(f"cannot read image {path}: {e}") from None


class ZS3SemanticDatasetMapper:
    """Image + dense label map -> model input.

    Training: augment, then relabel every class outside ``train_classes`` (the unseen ones) as
    ``ignore_label``; label ids that are neither a class nor ignore are an error naming the file.
    Test: resize only; the label stays on disk (``sem_seg_file_name``) for the evaluator.
    Output: ``image`` (3, H, W) uint8, ``sem_seg`` (H, W) int64 in training, ``height``/``width``.
    """

    @configurable
    def __init__(
        self,
        is_train: bool,
        *,
        augmentations: Sequence[T.Augmentation],
        image_format: str,
        num_classes: int,
        train_classes: Sequence[int],
        ignore_label: int,
    ) -> None:
        self.is_train = is_train
        self.augmentations = T.AugmentationList(list(augmentations))
        self.image_format = image_format
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.train_lookup = class_lookup(num_classes, train_classes, ignore_label)
        self.label_dtype = np.uint8 if max(num_classes - 1, ignore_label) < 256 else np.float32
        mode = "training" if is_train else "inference"
        logger.info(f"[ZS3SemanticDatasetMapper] augmentations in {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train: bool = True) -> dict:
        dataset = cfg.DATASETS.TRAIN[0] if is_train else cfg.DATASETS.TEST[0]
        split = resolve_split(cfg, dataset)
        if is_train:
            augs = [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN,
                                         cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING)]
            if cfg.INPUT.CROP.ENABLED:
                augs.append(T.RandomCrop_CategoryAreaConstraint(
                    cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE, cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA,
                    split.ignore_label))
            if cfg.INPUT.COLOR_AUG_SSD:
                augs.append(ColorAugSSDTransform(img_format=cfg.INPUT.FORMAT))
            if cfg.INPUT.RANDOM_FLIP != "none":
                augs.append(T.RandomFlip(horizontal=cfg.INPUT.RANDOM_FLIP == "horizontal",
                                         vertical=cfg.INPUT.RANDOM_FLIP == "vertical"))
        else:
            augs = [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)] if cfg.INPUT.MIN_SIZE_TEST else []
        return {
            "is_train": is_train,
            "augmentations": augs,
            "image_format": cfg.INPUT.FORMAT,
            "num_classes": split.num_classes,
            "train_classes": training_classes(cfg, split),
            "ignore_label": split.ignore_label,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        image = read_image(dataset_dict["file_name"], self.image_format)
        dataset_dict.setdefault("height", image.shape[0])
        dataset_dict.setdefault("width", image.shape[1])
        sem_seg = None
        if self.is_train:
            path = dataset_dict["sem_seg_file_name"]
            sem_seg = read_label(path)
            if sem_seg.shape != image.shape[:2]:
                raise ValueError(f"label {path} has size {sem_seg.shape}, its image {image.shape[:2]}")
            check_label_ids(sem_seg, self.num_classes, self.ignore_label, path)
            # uint8 keeps Detectron2's PIL resize path; larger ids (ADE, ignore 65535) go through float32, exact below 2**24
            sem_seg = self.train_lookup[sem_seg].astype(self.label_dtype)
        aug_input = T.AugInput(image, sem_seg=sem_seg)
        self.augmentations(aug_input)
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        if sem_seg is not None:
            dataset_dict["sem_seg"] = torch.as_tensor(aug_input.sem_seg.astype(np.int64))
        return dataset_dict
