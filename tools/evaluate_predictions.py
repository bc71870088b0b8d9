#!/usr/bin/env python
"""Score a folder of predicted label PNGs against a folder of ground-truth label PNGs (same stems).

    python tools/evaluate_predictions.py --gt-dir DIR --pred-dir DIR \\
        (--dataset NAME | --num-classes C --unseen 3,7,12 [--class-names FILE]) [--ignore-label 255] \\
        [--boundary] [--max-dist-ratio 0.0075] [--workers N] [--allow-missing] [--strict] [--overwrite] \\
        --output metrics.json

The numbers are those of GeneralizedSemSegEvaluator (same per-image function and sums). The JSON holds the
metrics at top level in percent (NaN as null), plus ``num_images``, ``missing_predictions`` and
``invalid_pred_pixels`` (prediction pixels, anywhere in the image, whose id is not a class; on evaluated
pixels they count as wrong). A missing prediction (with --allow-missing) counts every pixel as wrong.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from zegcag.evaluation.generalized_sem_seg_evaluation import (
    SegmentationCounts,
    evaluate_label_map,
    json_safe,
    read_label_png,
)

logger = logging.getLogger("evaluate_predictions")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gt-dir", required=True, type=Path, help="ground-truth label PNGs")
    p.add_argument("--pred-dir", required=True, type=Path, help="predicted label PNGs with the same stems")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="registered dataset whose metadata gives classes, unseen ids, ignore label")
    src.add_argument("--num-classes", type=int, help="number of classes C (ids 0..C-1)")
    p.add_argument("--unseen", help="comma-separated unseen class ids (with --num-classes; '' for none)")
    p.add_argument("--class-names", type=Path, help="text file, one class name per line (with --num-classes)")
    p.add_argument("--ignore-label", type=int, help="ignore id of the ground truth (default: dataset's, else 255)")
    p.add_argument("--boundary", action="store_true", help="also boundary precision/recall/F")
    p.add_argument("--max-dist-ratio", type=float, default=0.0075, help="boundary tolerance / image diagonal")
    p.add_argument("--workers", type=int, default=1, help="processes")
    p.add_argument("--allow-missing", action="store_true", help="count a missing prediction as all-wrong")
    p.add_argument("--strict", action="store_true", help="a predicted id outside the classes is an error")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--output", required=True, type=Path, help="metrics JSON to write")
    return p.parse_args(argv)


def resolve_classes(args: argparse.Namespace) -> tuple[list[str], list[int], list[int], int]:
    """-> class names, seen ids, unseen ids, ignore label."""
    if args.dataset:
        if args.unseen is not None or args.class_names is not None:
            raise ValueError("--unseen and --class-names go with --num-classes, not with --dataset")
        import zegcag  # noqa: F401  registers the datasets
        from detectron2.data import DatasetCatalog, MetadataCatalog

        meta = MetadataCatalog.get(args.dataset)
        if args.dataset not in DatasetCatalog.list() or not hasattr(meta, "stuff_classes"):
            known = sorted(n for n in DatasetCatalog.list() if hasattr(MetadataCatalog.get(n), "unseen_classes"))
            raise ValueError(f"unknown dataset '{args.dataset}'; registered zero-shot datasets: {known}")
        names = list(meta.stuff_classes)
        unseen = [int(i) for i in getattr(meta, "unseen_classes", [])]
        seen = [int(i) for i in getattr(meta, "seen_classes", [i for i in range(len(names)) if i not in unseen])]
        ignore = getattr(meta, "ignore_label", 255)
    else:
        if args.num_classes <= 0:
            raise ValueError(f"--num-classes must be positive, got {args.num_classes}")
        if args.unseen is None:
            raise ValueError("--unseen is required with --num-classes (comma-separated ids, '' for none)")
        try:
            unseen = sorted({int(tok) for tok in args.unseen.split(",") if tok.strip()})
        except ValueError:
            raise ValueError(f"--unseen must be comma-separated integers, got '{args.unseen}'") from None
        bad = [i for i in unseen if not 0 <= i < args.num_classes]
        if bad:
            raise ValueError(f"--unseen ids {bad} outside 0..{args.num_classes - 1}")
        names = [str(i) for i in range(args.num_classes)]
        if args.class_names is not None:
            names = [ln.strip() for ln in args.class_names.read_text().splitlines() if ln.strip()]
            if len(names) != args.num_classes:
                raise ValueError(
                    f"{args.class_names} lists {len(names)} class names, --num-classes is {args.num_classes}"
                )
        seen = [i for i in range(args.num_classes) if i not in unseen]
        ignore = 255
    return names, seen, unseen, int(ignore if args.ignore_label is None else args.ignore_label)


def pair_files(gt_dir: Path, pred_dir: Path, allow_missing: bool) -> list[tuple[Path, Path | None]]:
    """(ground truth, prediction or None) per GT stem, sorted; errors name missing and extra files."""
    for folder in (gt_dir, pred_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"not a directory: {folder}")
    gts = {p.stem: p for p in gt_dir.glob("*.png")}
    preds = {p.stem: p for p in pred_dir.glob("*.png")}
    if not gts:
        raise FileNotFoundError(f"no ground-truth *.png in {gt_dir}")
    extra = sorted(set(preds) - set(gts))
    if extra:
        raise ValueError(f"{len(extra)} prediction(s) without ground truth, e.g. {pred_dir / (extra[0] + '.png')}")
    missing = sorted(set(gts) - set(preds))
    if missing and not allow_missing:
        raise FileNotFoundError(
            f"{len(missing)} prediction(s) missing, e.g. {pred_dir / (missing[0] + '.png')} "
            "(--allow-missing counts them as all-wrong)"
        )
    for stem in missing:
        logger.warning("missing prediction %s: every pixel of %s counts as wrong", pred_dir / f"{stem}.png", gts[stem])
    return [(gts[s], preds.get(s)) for s in sorted(gts)]


def evaluate_pairs(job: tuple) -> tuple[SegmentationCounts, int]:
    """Worker: sums over a list of (gt, pred) files -> (counts, invalid predicted pixels)."""
    pairs, num_classes, ignore_label, boundary, max_dist_ratio, strict = job
    counts = SegmentationCounts(num_classes)
    invalid_pixels = 0
    for gt_path, pred_path in pairs:
        gt = read_label_png(gt_path)
        if pred_path is None:
            pred = np.full(gt.shape, -1, dtype=np.int64)  # no class: every evaluated pixel is wrong
        else:
            pred = read_label_png(pred_path)
            invalid = (pred < 0) | (pred >= num_classes)
            if invalid.any():
                ids = np.unique(pred[invalid])[:10].tolist()
                if strict:
                    raise ValueError(
                        f"{pred_path}: predicted ids {ids} outside the classes 0..{num_classes - 1} (--strict)"
                    )
                invalid_pixels += int(invalid.sum())
        try:
            counts.add(evaluate_label_map(gt, pred, num_classes=num_classes, ignore_label=ignore_label,
                                          boundary=boundary, max_dist_ratio=max_dist_ratio))
        except ValueError as e:
            raise ValueError(f"{gt_path} / {pred_path}: {e}") from None
    return counts, invalid_pixels


def run(args: argparse.Namespace) -> dict:
    """Evaluate and write ``args.output``; returns the written metrics (NaN as None)."""
    if args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    names, seen, unseen, ignore = resolve_classes(args)
    pairs = pair_files(args.gt_dir, args.pred_dir, args.allow_missing)
    n_jobs = min(len(pairs), args.workers * 4)
    options = (len(names), ignore, args.boundary, args.max_dist_ratio, args.strict)
    jobs = [(pairs[i::n_jobs], *options) for i in range(n_jobs)]
    total, invalid_pixels = SegmentationCounts(len(names)), 0
    if args.workers == 1:
        results = map(evaluate_pairs, jobs)
    else:
        pool = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(args.workers)
        results = pool.imap_unordered(evaluate_pairs, jobs)
    try:
        for counts, invalid in results:
            total.merge(counts)
            invalid_pixels += invalid
    finally:
        if args.workers > 1:
            pool.terminate()
    metrics = dict(total.metrics(seen, unseen, names, boundary=args.boundary))
    metrics.update(num_images=total.num_images, missing_predictions=sum(p is None for _, p in pairs),
                   invalid_pred_pixels=invalid_pixels)
    if invalid_pixels:
        logger.warning(
            "%d predicted pixels had an id outside 0..%d; they count as wrong", invalid_pixels, len(names) - 1
        )
    out = json_safe(metrics)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w" if args.overwrite else "x") as f:
        json.dump(out, f, indent=2, allow_nan=False)
        f.write("\n")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        out = run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        logger.error("%s", e)
        return 2
    keys = ["mIoU", "seen_mIoU", "unseen_mIoU", "hIoU", "pAcc"] + (["boundary_F"] if args.boundary else [])
    logger.info("%d images -> %s: %s", out["num_images"], args.output, {k: out[k] for k in keys})
    return 0


if __name__ == "__main__":
    sys.exit(main())
