"""Registration shared by every zero-shot semantic-segmentation dataset.

A registered dataset is a folder of images and a folder of single-channel label PNGs with the same
file stems; label ids index the split's ``class_names`` and ``ignore_label`` marks unlabelled pixels.
Labels on disk keep every class: the zero-shot protocol (unseen pixels ignored, or images with unseen
classes dropped) is applied by the training mapper, so the unseen list can be changed from the config.
Nothing touches the disk until the dataset is loaded.
"""
from __future__ import annotations

import os
from pathlib import Path

from detectron2.data import DatasetCatalog, MetadataCatalog

from .splits import ZS3Split, load_split

EVALUATOR_TYPE = "gzs3_sem_seg"


def datasets_root() -> Path:
    """``$DETECTRON2_DATASETS``, default ``./datasets``."""
    return Path(os.environ.get("DETECTRON2_DATASETS", "datasets")).expanduser()


def load_sem_seg_dicts(image_dir: Path, label_dir: Path, image_ext: str, label_ext: str, prepare_hint: str) -> list[dict]:
    """One dict per label file: ``file_name``, ``sem_seg_file_name``, ``image_id``."""
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"dataset folder not found: {folder.resolve()} (DETECTRON2_DATASETS={datasets_root()}). "
                f"Create it with: {prepare_hint}"
            )
    labels = sorted(label_dir.glob(f"*{label_ext}"))
    if not labels:
        raise FileNotFoundError(f"no '*{label_ext}' label files in {label_dir.resolve()}; create them with: {prepare_hint}")
    dicts = []
    for label in labels:
        stem = label.name[: -len(label_ext)]
        image = image_dir / f"{stem}{image_ext}"
        if not image.is_file():
            raise FileNotFoundError(f"label {label} has no image {image}")
        dicts.append({"file_name": str(image), "sem_seg_file_name": str(label), "image_id": stem})
    return dicts


def register_zs3_sem_seg(
    name: str,
    split: ZS3Split,
    image_dir: Path,
    label_dir: Path,
    *,
    prepare_hint: str,
    image_ext: str = ".jpg",
    label_ext: str = ".png",
) -> None:
    """Register ``name`` in DatasetCatalog/MetadataCatalog with the split's metadata."""
    DatasetCatalog.register(
        name, lambda: load_sem_seg_dicts(Path(image_dir), Path(label_dir), image_ext, label_ext, prepare_hint)
    )
    MetadataCatalog.get(name).set(
        image_root=str(image_dir),
        sem_seg_root=str(label_dir),
        stuff_classes=list(split.class_names),
        seen_classes=list(split.seen),
        unseen_classes=list(split.unseen),
        ignore_label=split.ignore_label,
        split_name=split.name,
        evaluator_type=EVALUATOR_TYPE,
        prepare_hint=prepare_hint,
    )


def register_prepared_splits(
    root: Path, splits: dict[str, str], prepare_script: str, *, name_suffix: str = "", image_ext: str = ".jpg"
) -> list[str]:
    """Register ``<split>_zs3_{train,val}_sem_seg<name_suffix>`` from ``<root>/zs3_<split>/{images,labels}/{train,val}``.

    ``splits`` maps a split name to the flags of ``datasets/<prepare_script>`` that write its folder;
    ``name_suffix`` lets tests register a second copy under another root. Returns the registered names.
    """
    names = []
    for split_name, flags in splits.items():
        split = load_split(split_name)
        folder = Path(root) / f"zs3_{split_name}"
        hint = f"python datasets/{prepare_script} {flags} --output-root {root}"
        for phase in ("train", "val"):
            name = f"{split_name}_zs3_{phase}_sem_seg{name_suffix}"
            register_zs3_sem_seg(name, split, folder / "images" / phase, folder / "labels" / phase,
                                 prepare_hint=hint, image_ext=image_ext)
            names.append(name)
    return names
