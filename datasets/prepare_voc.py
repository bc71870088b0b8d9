#!/usr/bin/env python3
"""Convert PASCAL VOC 2012 (+ SBD "SegmentationClassAug" labels) into zs3_voc/ or zs3_voc_bg/.

Raw labels hold 0 = background, 1..20 the VOC classes, 255 = object boundary. Split ``voc`` (default,
SPNet/ZegFormer setting): 20 classes, background and boundaries -> 255. Split ``voc_bg`` (--background):
21 classes with background = class 0, boundaries -> 255.

Expected input (--raw-dir VOCdevkit/VOC2012):
    JPEGImages/<id>.jpg
    SegmentationClassAug/<id>.png            training labels (10,582 train_aug ids; SBD conversion)
    SegmentationClass/<id>.png               validation labels (official VOC 2012)
    ImageSets/Segmentation/train_aug.txt     training ids
    ImageSets/Segmentation/val.txt           validation ids (1,449)
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _prepare_common import (
    build_parser,
    read_id_list,
    require_dir,
    run,
    samples_from_ids,
    write_index_png_dataset,
)

# voc_bg lists the raw VOC label space: class i there is raw value i.
RAW_SPLIT = "voc_bg"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser(__doc__, "VOCdevkit/VOC2012 of the VOC 2012 download, with SegmentationClassAug/ added")
    parser.add_argument("--background", action="store_true", help="write split voc_bg (background = seen class 0)")
    parser.add_argument("--train-list", type=Path, help="default: <raw-dir>/ImageSets/Segmentation/train_aug.txt")
    parser.add_argument("--val-list", type=Path, help="default: <raw-dir>/ImageSets/Segmentation/val.txt")
    parser.add_argument("--train-label-dir", type=Path, help="default: <raw-dir>/SegmentationClassAug")
    parser.add_argument("--val-label-dir", type=Path, help="default: <raw-dir>/SegmentationClass")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raw = require_dir(args.raw_dir, "VOCdevkit/VOC2012 with JPEGImages/, SegmentationClass(Aug)/ and ImageSets/")
    images = require_dir(raw / "JPEGImages", "the VOC 2012 images")
    sets = raw / "ImageSets" / "Segmentation"
    lists = {"train": args.train_list or sets / "train_aug.txt", "val": args.val_list or sets / "val.txt"}
    label_dirs = {
        "train": args.train_label_dir or raw / "SegmentationClassAug",
        "val": args.val_label_dir or raw / "SegmentationClass",
    }
    samples = {}
    for phase in ("train", "val"):
        ids = read_id_list(lists[phase], f"the {phase} image ids (one per line)")
        label_dir = require_dir(label_dirs[phase], f"the {phase} label PNGs (values 0..20, 255)")
        samples[phase] = samples_from_ids(ids, images, label_dir, ".jpg", ".png")

    write_index_png_dataset("voc_bg" if args.background else "voc", RAW_SPLIT, samples, args)

if __name__ == "__main__":
    run(main)
