#!/usr/bin/env python
"""Generate the built-in synthetic zero-shot segmentation benchmark (see datasets/README_synthetic.md).

    python datasets/prepare_synthetic.py                      # $DETECTRON2_DATASETS/zs3_synthetic
    python datasets/prepare_synthetic.py --seed 1             # .../zs3_synthetic_s1 (other scenes)
    python datasets/prepare_synthetic.py --classes coco       # .../zs3_synthetic_coco (171 COCO-Stuff classes)
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--output-root",
        type=Path,
        default=Path(os.environ.get("DETECTRON2_DATASETS", "datasets")),
        help="datasets root; writes <root>/zs3_synthetic[_s<seed>] (default: $DETECTRON2_DATASETS or ./datasets)",
    )
    ap.add_argument("--seed", type=int, default=0, help="scene seed (layouts, classes, per-instance noise)")
    ap.add_argument("--classes", choices=("voc", "coco"), default="voc",
                    help="class set: the 20 VOC classes (zs3_synthetic) or the 171 COCO-Stuff ones (zs3_synthetic_coco)")
    ap.add_argument("--appearance-seed", type=int, default=0, help="seed of the random map W and the texture tiles")
    ap.add_argument("--image-size", type=int, default=None, help="image side in pixels (default 64)")
    ap.add_argument("--num-train", type=int, default=None, help="training images (default 3000)")
    ap.add_argument("--num-val", type=int, default=None, help="validation images (default 400)")
    ap.add_argument("--num-calib", type=int, default=None, help="calibration images (default 200)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing folder generated with another config")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from zegcag.data.synthetic import SyntheticBenchmarkConfig, generate_benchmark

    overrides = {
        key: value
        for key, value in (
            ("image_size", args.image_size),
            ("num_train", args.num_train),
            ("num_val", args.num_val),
            ("num_calib", args.num_calib),
        )
        if value is not None
    }
    split_name = {"voc": "synthetic", "coco": "synthetic_coco"}[args.classes]
    cfg = replace(SyntheticBenchmarkConfig(seed=args.seed, appearance_seed=args.appearance_seed, split_name=split_name),
                  **overrides)
    try:
        folder = generate_benchmark(args.output_root, cfg, overwrite=args.overwrite)
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{subset} {n}" for subset, n in cfg.counts().items())
    print(f"synthetic benchmark ready in {folder.resolve()} ({counts} images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
