#!/usr/bin/env python3
"""Convert PASCAL-Context into zs3_context_59/ (default) or zs3_context_33/ (--classes 33).

Classes are matched through their id in the 459-class labels of the original release ("dataset_ids" in
zegcag/data/splits/context_<n>.json); background and every class outside the split -> 255.

Expected input (--raw-dir VOCdevkit/VOC2010):
    JPEGImages/<id>.jpg                          VOC 2010 images
    one of the two label sources (--label-format, default: whichever is present):
      mat:  trainval/<id>.mat                    original PASCAL-Context release (trainval.tar.gz):
                                                 variable "LabelMap", 459-class ids of its labels.txt
      png59: SegmentationClassContext/<id>.png   59-class PNGs as commonly distributed (e.g. written by
                                                 mmsegmentation's pascal_context.py from the Detail API):
                                                 0 = background, 1..59 the 59 classes in the standard order
    image ids: ImageSets/SegmentationContext/{train,val}.txt, else ImageSets/Main/{train,val}.txt
               (4,998 / 5,105 images), or --train-list / --val-list
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from _prepare_common import (
    PrepareError,
    Sample,
    apply_lookup,
    build_parser,
    class_lookup,
    dataset_folder,
    first_existing,
    load_split_spec,
    read_id_list,
    read_index_png,
    require_dir,
    run,
    samples_from_ids,
    write_dataset,
)

NUM_RAW = 460  # ids 0..459 of the original release, 0 = unlabeled
LABEL_SOURCES = {"mat": ("trainval", ".mat"), "png59": ("SegmentationClassContext", ".png")}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser(__doc__, "VOCdevkit/VOC2010 with JPEGImages/ and a PASCAL-Context label source")
    parser.add_argument("--classes", choices=("33", "59"), default="59", help="class list (default: 59)")
    parser.add_argument("--label-format", choices=tuple(LABEL_SOURCES), help="default: the one present in --raw-dir")
    parser.add_argument("--label-dir", type=Path, help="default: <raw-dir>/trainval or SegmentationClassContext")
    parser.add_argument("--train-list", type=Path, help="default: see above")
    parser.add_argument("--val-list", type=Path, help="default: see above")
    return parser.parse_args(argv)


def label_source(args: argparse.Namespace) -> tuple[str, Path]:
    """(format, folder) of the raw labels."""
    formats = [args.label_format] if args.label_format else list(LABEL_SOURCES)
    candidates = [(f, args.label_dir or args.raw_dir / LABEL_SOURCES[f][0]) for f in formats]
    for fmt, folder in candidates:
        if folder.is_dir():
            return fmt, folder
    looked = ", ".join(f"{folder} ({fmt})" for fmt, folder in candidates)
    raise PrepareError(f"no PASCAL-Context labels found; looked for: {looked}")


def read_mat_label(path: Path) -> np.ndarray:
    """(H, W) 459-class ids of an original-release .mat file."""
    try:
        return np.asarray(loadmat(str(path))["LabelMap"])
    except KeyError:
        raise PrepareError(f"{path} has no variable 'LabelMap' (expected the original PASCAL-Context .mat)") from None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raw = require_dir(args.raw_dir, "VOCdevkit/VOC2010 with JPEGImages/ and PASCAL-Context labels")
    images = require_dir(raw / "JPEGImages", "the VOC 2010 images")
    fmt, label_dir = label_source(args)
    sets = raw / "ImageSets"
    samples = {}
    for phase, given in (("train", args.train_list), ("val", args.val_list)):
        default = [sets / "SegmentationContext" / f"{phase}.txt", sets / "Main" / f"{phase}.txt"]
        ids = read_id_list(given or first_existing(default, f"the {phase} image list"), f"the {phase} image ids")
        samples[phase] = samples_from_ids(ids, images, label_dir, ".jpg", LABEL_SOURCES[fmt][1])

    split_name = f"context_{args.classes}"
    spec = load_split_spec(split_name)
    ignore = spec["ignore_label"]
    table = class_lookup(spec["dataset_ids"], NUM_RAW, ignore)
    if fmt == "png59":
        # PNG value k (1..59) is the k-th class of context_59, i.e. 459-class id dataset_ids[k - 1]
        ids59 = np.asarray(load_split_spec("context_59")["dataset_ids"])
        table = np.concatenate([[ignore], table[ids59]])

    def convert(s: Sample) -> np.ndarray:
        raw_label = read_mat_label(s.label) if fmt == "mat" else read_index_png(s.label)
        return apply_lookup(raw_label, table, ignore, s.label)

    write_dataset(
        dataset_folder(args.output_root, split_name), spec, samples, convert, args, extra_info={"label_format": fmt}
    )


if __name__ == "__main__":
    run(main)
