#!/usr/bin/env python3
"""CaGNet on a vocabulary of only the unseen classes, through the classifier fitted on generated features.

    python tools/benchmark_cagnet_vocabulary.py --config-file configs/cagnet_synthetic.yaml \\
        --weights RUN/model_final.pth [--dataset zs3_synthetic_val] [--max-images N] \\
        [--output RUN/cagnet_vocabulary.json] [--opts KEY VALUE ...]

The vocabulary is the unseen class names of the dataset's split; CaGNet fits a classifier for it from its
generator (set_vocabulary). Only pixels whose ground truth is an unseen class are scored, re-indexed into that
vocabulary (every other pixel is ignored). Reported: the unseen-only mIoU / pixel accuracy of the fitted
classifier; the same for the trained classifier restricted to its unseen rows (a reference, not the
vocabulary path); and chance levels: pixel accuracy 1/K' and the expected mIoU of uniformly random labels,
mean_c n_c / (N + (K'-1) n_c) for n_c pixels of class c among N.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np

logger = logging.getLogger("benchmark_cagnet_vocabulary")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", required=True, help="the CaGNet config the weights were trained with")
    p.add_argument("--weights", required=True, help="trained checkpoint")
    p.add_argument("--dataset", help="registered dataset to score (default: the config's first DATASETS.TEST)")
    p.add_argument("--max-images", type=int, help="score only the first N images")
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", type=Path, help="write the results as JSON here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs")
    return p.parse_args(argv)


def chance_levels(gt_counts: np.ndarray) -> dict[str, float]:
    """``gt_counts: (K',)`` pixels per class -> chance pixel accuracy and expected mIoU of uniform random
    labels (percent); classes without pixels are left out of the mean, as in the metrics."""
    k, total = len(gt_counts), gt_counts.sum()
    present = gt_counts[gt_counts > 0].astype(np.float64)
    return {"chance_pAcc": 100.0 / k, "chance_mIoU": float(100.0 * (present / (total + (k - 1) * present)).mean())}


def unseen_only_labels(gt: np.ndarray, unseen: Sequence[int], ignore_label: int) -> np.ndarray:
    """Ground truth ``(H, W)`` over the split's classes -> ids into ``unseen`` (its order); others ignored."""
    table = np.full(max(int(gt.max()), ignore_label, *unseen) + 1, ignore_label, dtype=np.int64)
    table[list(unseen)] = np.arange(len(unseen))
    return table[gt]


def score(conf: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Unseen-only confusion ``(K', K')`` -> mIoU, pAcc, mAcc and IoU per class (percent)."""
    from zegcag.evaluation.metrics import segmentation_metrics

    m = segmentation_metrics(conf, seen=[], unseen=range(len(class_names)), class_names=class_names)
    return {key: m[key] for key in ("mIoU", "pAcc", "mAcc")} | {k: v for k, v in m.items() if k.startswith("IoU-")}


def evaluate(predictor, dataset: str, max_images: int | None = None) -> dict:
    """Score ``predictor`` (a CaGNet Predictor) on ``dataset`` with the unseen-only vocabulary -> results dict."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from zegcag.data.mappers.zs3_semantic_mapper import read_image
    from zegcag.evaluation.generalized_sem_seg_evaluation import read_label_png
    from zegcag.evaluation.metrics import confusion_matrix

    meta = MetadataCatalog.get(dataset)
    names, ignore = list(meta.stuff_classes), meta.ignore_label
    if list(predictor.training_vocabulary.class_names) != names:
        raise ValueError(f"{dataset}'s classes differ from the model's training vocabulary")
    # the model's own unseen classes: the split's list, or DATASETS.ZS3.UNSEEN_CLASSES when the config sets one
    unseen = (~predictor.training_vocabulary.seen_mask()).nonzero().flatten().tolist()
    vocabulary = [names[c] for c in unseen]
    records = DatasetCatalog.get(dataset)[:max_images]
    k = len(vocabulary)
    confs = {"trained_unseen_rows": np.zeros((k, k), np.int64), "fitted": np.zeros((k, k), np.int64)}
    for key, vocab in (("trained_unseen_rows", None), ("fitted", vocabulary)):
        start = time.perf_counter()
        predictor.set_vocabulary(vocab)
        if vocab is not None:
            fit_seconds = time.perf_counter() - start
        for record in records:
            gt = unseen_only_labels(read_label_png(record["sem_seg_file_name"]), unseen, ignore)
            if (gt == ignore).all():
                continue
            sem_seg = predictor(read_image(record["file_name"], "BGR"))["sem_seg"]
            pred = sem_seg[unseen].argmax(0) if vocab is None else sem_seg.argmax(0)
            confs[key] += confusion_matrix(gt, pred.numpy(), k, ignore)
    gt_counts = confs["fitted"].sum(1)
    if gt_counts.sum() == 0:
        raise ValueError(f"no pixel of an unseen class ({', '.join(vocabulary)}) in the {len(records)} image(s)")
    results = {
        "dataset": dataset, "num_images": len(records), "vocabulary": vocabulary,
        "synthesised_classes": predictor.synthesised_classes, "fit_seconds": fit_seconds,
        "fit_settings": asdict(predictor.model.vocabulary_classifiers.settings),
        "pixels_per_class": dict(zip(vocabulary, gt_counts.tolist())),
        **{key: score(conf, vocabulary) for key, conf in confs.items()}, **chance_levels(gt_counts),
    }
    fitted, trained = results["fitted"], results["trained_unseen_rows"]
    logger.info(f"{dataset}, {len(records)} images, unseen-only vocabulary of {k} classes: mIoU {fitted['mIoU']:.1f} "
                f"/ pAcc {fitted['pAcc']:.1f} with the fitted classifier (fitted in {fit_seconds:.1f}s); trained "
                f"classifier's unseen rows: mIoU {trained['mIoU']:.1f} / pAcc {trained['pAcc']:.1f}; chance: mIoU "
                f"{results['chance_mIoU']:.1f} / pAcc {results['chance_pAcc']:.1f}")
    return results


def run(args: argparse.Namespace) -> dict:
    from zegcag.engine.predictor import Predictor

    if args.output is not None and args.output.exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it")
    if len(args.opts) % 2:
        raise ValueError(f"--opts needs KEY VALUE pairs, got {len(args.opts)} items: {args.opts}")
    predictor = Predictor(args.config_file, args.weights, args.device, **dict(zip(args.opts[::2], args.opts[1::2])))
    if not hasattr(predictor.model, "vocabulary_classifiers"):
        raise ValueError(f"{args.config_file} builds a {type(predictor.model).__name__}, not a CaGNet")
    results = {"config_file": str(args.config_file), "weights": str(args.weights),
               **evaluate(predictor, args.dataset or predictor.cfg.DATASETS.TEST[0], args.max_images)}
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=1))
        logger.info(f"wrote {args.output}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        run(parse_args(argv))
    except (OSError, ValueError, KeyError) as e:
        logger.error("%s", e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
