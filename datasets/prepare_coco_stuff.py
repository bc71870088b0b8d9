#!/usr/bin/env python3
"""Convert COCO-Stuff 164k into zs3_coco_stuff_171/ (default) or zs3_coco_stuff_182/ (--variant 182).

Raw labels (stuffthingmaps_trainval2017.zip) hold the 182-id space: 0 = person ... 181 = wood, 255 =
unlabeled. Variant 171 (ZegFormer): the 171 classes that occur, renumbered 0..170 in raw id order.
Variant 182 (CaGNet/SPNet): raw ids kept; the 11 unused thing ids never occur. Unlabeled -> 255.

Expected input (--raw-dir, the COCO folder):
    train2017/<id>.jpg, val2017/<id>.jpg                     COCO 2017 images
    stuffthingmaps_trainval2017/{train2017,val2017}/<id>.png  (or stuffthingmaps/..., or --label-dir)
"""
from __future__ import annotations

import argparse
from pathlib import Path

from _prepare_common import (
    Sample,
    build_parser,
    first_existing,
    require_dir,
    require_file,
    run,
    write_index_png_dataset,
)

# coco_stuff_182 lists the raw label space: class i there is raw value i.
RAW_SPLIT = "coco_stuff_182"
RAW_PHASES = {"train": "train2017", "val": "val2017"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = build_parser(__doc__, "COCO folder with train2017/, val2017/ and the unzipped stuffthingmaps")
    parser.add_argument("--variant", choices=("171", "182"), default="171", help="class list (default: 171)")
    parser.add_argument(
        "--label-dir", type=Path, help="folder holding train2017/ and val2017/ label PNGs (default: see above)"
    )
    return parser.parse_args(argv)


def find_samples(image_dir: Path, label_dir: Path) -> list[Sample]:
    """One sample per label PNG; the error names the first label without its image."""
    samples = [Sample(p.stem, image_dir / f"{p.stem}.jpg", p) for p in sorted(label_dir.glob("*.png"))]
    for s in samples:
        require_file(s.image, f"the image of label {s.label}")
    return samples


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    raw = require_dir(args.raw_dir, "the COCO folder with train2017/, val2017/ and stuffthingmaps")
    label_root = args.label_dir or first_existing(
        [raw / "stuffthingmaps_trainval2017", raw / "stuffthingmaps"], "the COCO-Stuff label folder"
    )
    samples = {}
    for phase, raw_phase in RAW_PHASES.items():
        image_dir = require_dir(raw / raw_phase, f"the COCO {raw_phase} images")
        label_dir = require_dir(label_root / raw_phase, f"the stuffthingmaps {raw_phase} PNGs")
        samples[phase] = find_samples(image_dir, label_dir)

    write_index_png_dataset(f"coco_stuff_{args.variant}", RAW_SPLIT, samples, args)

if __name__ == "__main__":
    run(main)
