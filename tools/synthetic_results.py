#!/usr/bin/env python3
"""Regenerate the synthetic-benchmark results table (README and benchmarks/synthetic_results.md).

Trains and evaluates every row with tools/train_net.py (one run each, on CPU), adds the chance level
computed from the validation labels, and writes the table between the README's results markers.

    python tools/synthetic_results.py [--rows spnet spnet_split_b spnet_supervised] [--output-root output/results]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SPLIT_B = "['bicycle', 'bottle', 'cat', 'dining table', 'horse']"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"

# row name -> (description, config, scene seed, extra KEY VALUE overrides, class set)
ROWS = {
    "spnet": ("SPNet, zero-shot", "configs/spnet_synthetic.yaml", 0, [], "synthetic"),
    "spnet_split_b": ("SPNet, zero-shot, scene seed 1, unseen = bicycle, bottle, cat, dining table, horse",
                      "configs/spnet_synthetic.yaml", 1, ["DATASETS.ZS3.UNSEEN_CLASSES", SPLIT_B], "synthetic"),
    "spnet_supervised": ("SPNet trained on all classes (supervised upper bound)", "configs/spnet_synthetic.yaml", 0,
                         ["DATASETS.ZS3.TRAIN_ON_ALL_CLASSES", "True"], "synthetic"),
    "spnet_coco": ("SPNet, zero-shot, COCO-Stuff classes (157 seen / 15 unseen, 2000 iterations)",
                   "configs/spnet_synthetic_coco.yaml", 0, [], "synthetic_coco"),
}
# chance rows: (scene seed, unseen names or None for the split's own, label, class set)
CHANCE_SETS = ((0, None, "default split", "synthetic"),
               (1, ast.literal_eval(SPLIT_B), "scene seed 1, split B", "synthetic"),
               (0, None, "COCO-Stuff classes", "synthetic_coco"))


def dataset_names(seed: int, class_set: str) -> list[str]:
    from zegcag.data.datasets import synthetic_folder_name

    prefix = synthetic_folder_name(seed, class_set)
    return ["DATASETS.TRAIN", f"('{prefix}_train',)", "DATASETS.TEST", f"('{prefix}_val',)",
            "TEST.GZS3.CALIBRATION_DATASET", f"{prefix}_calib"]


def run_row(name: str, output_root: Path, reuse: bool) -> dict:
    _, config, seed, opts, class_set = ROWS[name]
    out = output_root / name
    if reuse and (out / "eval_results.json").is_file():
        print(f"reusing {out / 'eval_results.json'}", flush=True)
        return next(iter(json.loads((out / "eval_results.json").read_text()).values()))["sem_seg"]
    cmd = [sys.executable, str(REPO / "tools/train_net.py"), "--config-file", config, "--overwrite",
           *dataset_names(seed, class_set), *opts, "OUTPUT_DIR", str(out)]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    results = json.loads((out / "eval_results.json").read_text())
    return next(iter(results.values()))["sem_seg"]


def chance_rows(seed: int, unseen_names: list[str] | None, class_set: str = "synthetic") -> dict[str, dict]:
    """Expected metrics of two chance predictors on the validation labels.

    "uniform": every pixel gets a class drawn uniformly among the K classes. For a class with ground-truth
    share p and prediction share q: IoU = pq / (p + q - pq).
    "mask": background is predicted perfectly and every object pixel gets a uniformly random object class
    (q = object share / K_obj for object classes, p·1/K_obj of them correct).
    "novelty": every seen pixel is right and every unseen pixel gets a uniformly random *unseen* class: what a
    calibrated model reaches with perfect "not a seen class" detection and no transfer at all.
    Each predictor picks among the unseen classes at random, so its ZSL accuracy is 100 / U.
    """
    from detectron2.data import DatasetCatalog

    from zegcag.data.datasets import load_split, synthetic_folder_name
    from zegcag.data.label_io import read_label

    split = load_split(class_set)
    if unseen_names:
        split = split.with_unseen(unseen_names)
    counts = np.zeros(split.num_classes)
    for d in DatasetCatalog.get(f"{synthetic_folder_name(seed, class_set)}_val"):
        label = read_label(d["sem_seg_file_name"])
        counts += np.bincount(label[label != split.ignore_label].ravel(), minlength=split.num_classes)[: split.num_classes]
    p = counts / counts.sum()
    q_uniform = np.full_like(p, 1.0 / split.num_classes)
    tp_uniform = p * q_uniform
    objects = np.arange(1, split.num_classes)  # class 0 is background
    q_mask, tp_mask = p.copy(), p.copy()
    q_mask[objects] = p[objects].sum() / len(objects)
    tp_mask[objects] = p[objects] / len(objects)
    unseen_ids = list(split.unseen)
    q_novel, tp_novel = p.copy(), p.copy()
    q_novel[unseen_ids] = p[unseen_ids].sum() / len(unseen_ids)
    tp_novel[unseen_ids] = p[unseen_ids] / len(unseen_ids)
    rows = {}
    for kind, q, tp in (("uniform", q_uniform, tp_uniform), ("mask", q_mask, tp_mask), ("novelty", q_novel, tp_novel)):
        iou = 100 * tp / (p + q - tp)
        seen, unseen = iou[list(split.seen)].mean(), iou[list(split.unseen)].mean()
        rows[kind] = {"seen_mIoU": seen, "unseen_mIoU": unseen, "hIoU": 2 * seen * unseen / (seen + unseen),
                      "mIoU": iou.mean(), "pAcc": 100 * tp.sum(), "unseen_zsl_mAcc": 100 / len(unseen_ids)}
    return rows


def format_table(rows: list[tuple[str, dict]]) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
    keys = ("seen_mIoU", "unseen_mIoU", "hIoU", "mIoU", "pAcc", "unseen_zsl_mAcc")
    lines = ["| run | seen mIoU | unseen mIoU | hIoU | mIoU | pAcc | unseen ZSL acc |", "|---|---|---|---|---|---|---|"]
    for name, m in rows:
        lines.append(f"| {name} | " + " | ".join(fmt(m.get(k)) for k in keys) + " |")
    return "\n".join(lines)


def write_readme_table(table: str) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    if README_START not in text:
        raise RuntimeError(f"README.md has no {README_START} ... {README_END} markers for the results table")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n{table}\n{README_END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--output-root", default=str(REPO / "output/results"))
    parser.add_argument("--no-readme", action="store_true", help="only print and record, leave README.md as it is")
    parser.add_argument("--reuse", action="store_true", help="take a row's results from an earlier run in --output-root")
    args = parser.parse_args()

    import zegcag  # noqa: F401  registers the datasets
    from zegcag.data.datasets import datasets_root, load_split
    from zegcag.data.synthetic import ensure_synthetic_benchmark

    start = time.time()
    for seed, class_set in sorted({(ROWS[r][2], ROWS[r][4]) for r in args.rows} | {(c[0], c[3]) for c in CHANCE_SETS}):
        ensure_synthetic_benchmark(datasets_root(), seed=seed, split_name=class_set)
    rows = []
    for seed, unseen, label, class_set in CHANCE_SETS:
        chance = chance_rows(seed, unseen, class_set)
        num_classes = load_split(class_set).num_classes
        rows.append((f"chance: uniform over the {num_classes} classes, {label}", chance["uniform"]))
        rows.append((f"chance: perfect object masks, random object class, {label}", chance["mask"]))
        rows.append((f"no transfer: perfect seen/unseen detection, random unseen class, {label}", chance["novelty"]))
    for name in args.rows:
        rows.append((ROWS[name][0], run_row(name, Path(args.output_root), args.reuse)))
    table = format_table(rows)
    print(table)
    record = REPO / "benchmarks/synthetic_results.md"
    record.parent.mkdir(exist_ok=True)
    record.write_text(
        f"# Synthetic benchmark results\n\nGenerated by `tools/synthetic_results.py` on {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPU cores, {(time.time() - start) / 60:.1f} min in all"
        f"{' (trained rows reused from ' + args.output_root + ')' if args.reuse else ''}. One training run per row.\n\n{table}\n"
    )
    if not args.no_readme:
        write_readme_table(table)


if __name__ == "__main__":
    main()
