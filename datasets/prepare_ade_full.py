#!/usr/bin/env python3
"""Convert ADE20K-Full (ADE20K_2021_17_01) into zs3_ade_full_847/.

The class of a pixel of the full annotation ``<id>_seg.png`` is (R / 10) * 256 + G; the 847 classes of
zegcag/data/splits/ade_full_847.json carry that value as "dataset_ids", every other value -> 65535.
Labels are 16-bit PNGs. Images (and labels, nearest neighbour) whose short side exceeds --max-short-side
are resized to it (512, as MaskFormer/ZegFormer); the others are linked or copied unchanged.

The seen/unseen split is ZegFormer's frequency split (unseen = classes in <= 10 training images). The
converter counts the training images of every class again and writes them to prepare_info.json; it warns
when the counts would move a class across that threshold (e.g. another ADE20K release).

Expected input (--raw-dir ADE20K_2021_17_01):
    images/ADE/training/**/ADE_train_<n>.jpg and ADE_train_<n>_seg.png
    images/ADE/validation/**/ADE_val_<n>.jpg and ADE_val_<n>_seg.png
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from _prepare_common import (
    Sample,
    build_parser,
    class_lookup,
    dataset_folder,
    load_split_spec,
    place_image,
    require_dir,
    require_file,
    run,
    write_dataset,
)

logger = logging.getLogger("prepare")

SPLIT = "ade_full_847"
RAW_PHASES = {"train": "training", "val": "validation"}
RARE_MAX_IMAGES = 10  # ZegFormer: classes in at most 10 training images are unseen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser(__doc__, "ADE20K_2021_17_01 of the ADE20K full download (with images/ADE/)")
    parser.add_argument(
        "--max-short-side", type=int, default=512, help="resize larger images to this short side (0: never)"
    )
    return parser.parse_args(argv)


def find_samples(folder: Path) -> list[Sample]:
    """One sample per ``*_seg.png`` below ``folder``; the error names the first one without its image."""
    samples = []
    for seg in sorted(folder.rglob("*_seg.png"), key=lambda p: p.name):
        stem = seg.name[: -len("_seg.png")]
        samples.append(Sample(stem, require_file(seg.with_name(f"{stem}.jpg"), f"the image of {seg}"), seg))
    return samples


def resized_shape(height: int, width: int, max_short: int) -> tuple[int, int] | None:
    """(H', W') with short side ``max_short`` if the short side is larger, else None."""
    short = min(height, width)
    if max_short <= 0 or short <= max_short:
        return None
    scale = max_short / short
    return (max_short, round(width * scale)) if height == short else (round(height * scale), max_short)


def read_full_classes(path: Path) -> np.ndarray:
    """(H, W) int64 full-annotation class of each pixel: (R / 10) * 256 + G."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
    return rgb[..., 0] // 10 * 256 + rgb[..., 1]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raw = require_dir(args.raw_dir, "ADE20K_2021_17_01 with images/ADE/training and images/ADE/validation")
    samples = {
        phase: find_samples(require_dir(raw / "images" / "ADE" / sub, f"the ADE20K {sub} images and *_seg.png"))
        for phase, sub in RAW_PHASES.items()
    }
    spec = load_split_spec(SPLIT)
    ignore = spec["ignore_label"]
    dataset_ids = spec["dataset_ids"]
    table = class_lookup(dataset_ids, max(dataset_ids) + 1, ignore)
    train_stems = {s.stem for s in samples["train"]}
    counts = [0] * len(spec["classes"])

    def convert(s: Sample) -> np.ndarray:
        full = read_full_classes(s.label)
        inside = full < len(table)
        label = np.where(inside, table[np.where(inside, full, 0)], ignore).astype(np.uint16)
        if s.stem in train_stems:
            for c in np.unique(label[label != ignore]).tolist():
                counts[c] += 1
        shape = resized_shape(*label.shape, args.max_short_side)
        if shape is not None:
            label = cv2.resize(label, shape[::-1], interpolation=cv2.INTER_NEAREST)
        return label

    def write_image(s: Sample, dst: Path) -> None:
        with Image.open(s.image) as img:
            shape = resized_shape(img.height, img.width, args.max_short_side)
            if shape is None:
                place_image(s.image, dst, args.copy_images)
            else:
                img.convert("RGB").resize(shape[::-1], Image.BILINEAR).save(dst, quality=95)

    # counts fill up during the conversion, before prepare_info.json is written
    info = {"max_short_side": args.max_short_side, "train_image_counts": counts}
    write_dataset(dataset_folder(args.output_root, SPLIT), spec, samples, convert, args, write_image, info)
    warn_split_changes(spec, counts)


def warn_split_changes(spec: dict, counts: list[int]) -> None:
    """Warn when the recounted training images would move classes across the rare threshold."""
    unseen = set(spec["unseen"])
    moved = [name for i, name in enumerate(spec["classes"]) if (counts[i] <= RARE_MAX_IMAGES) != (i in unseen)]
    if moved:
        logger.warning(
            "%d classes would change seen/unseen status with these training images (unseen: <= %d images), "
            "e.g. %s; the shipped split is kept",
            len(moved),
            RARE_MAX_IMAGES,
            moved[:5],
        )


if __name__ == "__main__":
    run(main)
