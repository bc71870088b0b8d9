#!/usr/bin/env python3
"""Regenerate the synthetic-benchmark results table (README and benchmarks/synthetic_results.md).

Trains and evaluates every row with tools/train_net.py (one run each, on CPU), adds the chance level
computed from the validation labels, and writes the table between the README's results markers.

    python tools/synthetic_results.py [--rows spnet zegformer_seg ...] [--output-root output/results] [--jobs 2]

Rows that evaluate another row's checkpoint (ZegFormer-img / fusion, CaGNet before finetuning or without
calibration) run after the training runs they need.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SPLIT_B = "['bicycle', 'bottle', 'cat', 'dining table', 'horse']"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"

TINY_CLIP = REPO / "tests" / "fixtures" / "tiny_clip.json"
# The CLIP image branch of ZegFormer-img / ZegFormer from the tests' tiny, randomly initialised open_clip model
# (no pretrained CLIP can be downloaded here): those rows show that the path runs, not what CLIP adds.
TINY_CLIP_BRANCH = ["MODEL.CLASS_EMBED.CLIP_MODEL", TINY_CLIP.stem, "MODEL.CLASS_EMBED.CLIP_PRETRAINED", "",
                    "MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG", str(TINY_CLIP)]


@dataclass(frozen=True)
class Row:
    """One table row: a training run of ``config``, or (``eval_of``) an evaluation of another row's weights."""

    label: str
    config: str
    seed: int = 0  # scene seed of the generated benchmark
    opts: tuple[str, ...] = ()  # KEY VALUE overrides of training (and of the evaluation of eval_of rows)
    class_set: str = "synthetic"
    eval_of: str | None = None  # evaluate a checkpoint of this row with eval_opts instead of training
    eval_opts: tuple[str, ...] = ()
    eval_weights: str = "model_final.pth"  # that checkpoint, in eval_of's output directory


_SPLIT_B = ("DATASETS.ZS3.UNSEEN_CLASSES", SPLIT_B)
_NO_CALIBRATION = ("TEST.GZS3.CALIBRATION_DATASET", "")
ROWS = {
    "spnet": Row("SPNet, zero-shot", "configs/spnet_synthetic.yaml"),
    "spnet_from_scratch": Row("SPNet, zero-shot, from scratch (no pretrained backbone)", "configs/spnet_synthetic.yaml",
                              opts=("MODEL.WEIGHTS", "")),
    "spnet_split_b": Row("SPNet, zero-shot, scene seed 1, unseen = bicycle, bottle, cat, dining table, horse",
                         "configs/spnet_synthetic.yaml", 1, _SPLIT_B),
    "spnet_supervised": Row("SPNet trained on all classes (supervised upper bound)", "configs/spnet_synthetic.yaml",
                            opts=("DATASETS.ZS3.TRAIN_ON_ALL_CLASSES", "True")),
    "zegformer_seg": Row("ZegFormer-seg, zero-shot", "configs/zegformer_synthetic.yaml"),
    "zegformer_img": Row("ZegFormer-img (tiny random CLIP: shows the path runs)", "configs/zegformer_synthetic.yaml",
                         eval_of="zegformer_seg",
                         eval_opts=("MODEL.ZEGFORMER.INFERENCE_MODE", "img", *TINY_CLIP_BRANCH)),
    "zegformer_full": Row("ZegFormer, seg + img fusion (tiny random CLIP: shows the path runs)",
                          "configs/zegformer_synthetic.yaml", eval_of="zegformer_seg",
                          eval_opts=("MODEL.ZEGFORMER.INFERENCE_MODE", "fusion", *TINY_CLIP_BRANCH)),
    "zegformer_seg_split_b": Row("ZegFormer-seg, zero-shot, scene seed 1, split B", "configs/zegformer_synthetic.yaml",
                                 1, _SPLIT_B),
    "cagnet": Row("CaGNet (pixel-wise), zero-shot", "configs/cagnet_synthetic.yaml"),
    "cagnet_training_step_only": Row("CaGNet after the training step only (before finetuning), no calibration",
                                     "configs/cagnet_synthetic.yaml", eval_of="cagnet", eval_opts=_NO_CALIBRATION,
                                     eval_weights="model_0000549.pth"),
    "cagnet_no_calibration": Row("CaGNet, no calibration", "configs/cagnet_synthetic.yaml", eval_of="cagnet",
                                 eval_opts=_NO_CALIBRATION),
    "zs3net": Row("ZS3Net-style ablation (generator from noise, no CM, no D)", "configs/zs3net_synthetic.yaml"),
    "cagnet_ec_only": Row("CaGNet ablation: E&C only (no generator, no finetuning)",
                          "configs/cagnet_ec_only_synthetic.yaml"),
    "cagnet_split_b": Row("CaGNet (pixel-wise), zero-shot, scene seed 1, split B", "configs/cagnet_synthetic.yaml",
                          1, _SPLIT_B),
    "zs3net_split_b": Row("ZS3Net-style ablation, scene seed 1, split B", "configs/zs3net_synthetic.yaml", 1, _SPLIT_B),
    "cagnet_ec_only_split_b": Row("CaGNet ablation: E&C only, scene seed 1, split B",
                                  "configs/cagnet_ec_only_synthetic.yaml", 1, _SPLIT_B),
    "spnet_coco": Row("SPNet, zero-shot, COCO-Stuff classes (157 seen / 15 unseen, 2000 iterations)",
                      "configs/spnet_synthetic_coco.yaml", class_set="synthetic_coco"),
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
    row = ROWS[name]
    out = output_root / name
    if reuse and (out / "eval_results.json").is_file():
        print(f"reusing {out / 'eval_results.json'}", flush=True)
        return next(iter(json.loads((out / "eval_results.json").read_text()).values()))["sem_seg"]
    run = ["--overwrite", *dataset_names(row.seed, row.class_set), *row.opts]
    if row.eval_of is not None:
        weights = output_root / row.eval_of / row.eval_weights
        if not weights.is_file():
            raise FileNotFoundError(f"row '{name}' evaluates {weights}, which row '{row.eval_of}' did not write")
        run = ["--eval-only", *run, *row.eval_opts, "MODEL.WEIGHTS", str(weights)]
    cmd = [sys.executable, str(REPO / "tools/train_net.py"), "--config-file", row.config, *run, "OUTPUT_DIR", str(out)]
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    results = json.loads((out / "eval_results.json").read_text())
    return next(iter(results.values()))["sem_seg"]


def run_rows(names: list[str], output_root: Path, reuse: bool, jobs: int) -> dict[str, dict]:
    """Results of every named row: training rows first (``jobs`` at a time), then the evaluations of their
    checkpoints. A row evaluated from another one brings that one in even if it is not named."""
    needed = set(names) | {ROWS[n].eval_of for n in names if ROWS[n].eval_of}
    results = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for stage in ([n for n in ROWS if n in needed and ROWS[n].eval_of is None],
                      [n for n in ROWS if n in needed and ROWS[n].eval_of is not None]):
            futures = {name: pool.submit(run_row, name, output_root, reuse) for name in stage}
            results.update({name: future.result() for name, future in futures.items()})
    return results


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
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each uses OMP_NUM_THREADS threads)")
    args = parser.parse_args()

    import zegcag  # noqa: F401  registers the datasets
    from zegcag.data.datasets import datasets_root, load_split
    from zegcag.data.synthetic import ensure_synthetic_benchmark

    start = time.time()
    for seed, class_set in sorted({(ROWS[r].seed, ROWS[r].class_set) for r in args.rows}
                                  | {(c[0], c[3]) for c in CHANCE_SETS}):
        ensure_synthetic_benchmark(datasets_root(), seed=seed, split_name=class_set)
    rows = []
    for seed, unseen, label, class_set in CHANCE_SETS:
        chance = chance_rows(seed, unseen, class_set)
        num_classes = load_split(class_set).num_classes
        rows.append((f"chance: uniform over the {num_classes} classes, {label}", chance["uniform"]))
        rows.append((f"chance: perfect object masks, random object class, {label}", chance["mask"]))
        rows.append((f"no transfer: perfect seen/unseen detection, random unseen class, {label}", chance["novelty"]))
    results = run_rows(args.rows, Path(args.output_root), args.reuse, args.jobs)
    rows += [(ROWS[name].label, results[name]) for name in args.rows]
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
