#!/usr/bin/env python3
"""Data-loader throughput (images/s) of the synthetic benchmark's training mapper; appends to benchmarks/data_loader.md.

    python tools/benchmark_data_loader.py [--config-file configs/spnet_synthetic.yaml] [--iters 100] [--workers 0 1 2]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from detectron2.config import get_cfg
from detectron2.projects.deeplab import add_deeplab_config

import zegcag  # noqa: F401
from zegcag import add_zegcag_config
from zegcag.data.datasets import datasets_root
from zegcag.data.synthetic import ensure_synthetic_benchmark
from zegcag.engine import Trainer

REPO = Path(__file__).resolve().parent.parent


def measure(cfg, iters: int, warmup: int = 5) -> float:
    loader = iter(Trainer.build_train_loader(cfg))
    for _ in range(warmup):
        next(loader)
    start = time.perf_counter()
    for _ in range(iters):
        next(loader)
    return iters * cfg.SOLVER.IMS_PER_BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="configs/spnet_synthetic.yaml")
    parser.add_argument("--iters", type=int, default=100, help="batches timed per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default=str(REPO / "benchmarks/data_loader.md"))
    args = parser.parse_args()

    ensure_synthetic_benchmark(datasets_root())
    rows = []
    for workers in args.workers:
        cfg = get_cfg()
        add_deeplab_config(cfg)
        add_zegcag_config(cfg)
        cfg.merge_from_file(args.config_file)
        cfg.DATALOADER.NUM_WORKERS = workers
        rate = measure(cfg, args.iters)
        rows.append(f"| {time.strftime('%Y-%m-%d')} | {args.config_file} | {workers} | "
                    f"{cfg.SOLVER.IMS_PER_BATCH} | {rate:.0f} |")
        print(rows[-1], flush=True)

    out = Path(args.output)
    if not out.exists():
        out.write_text("# Data-loader throughput\n\nTraining mapper (read PNG image + label, zero-shot relabelling, "
                       "augmentations, batching) measured by `tools/benchmark_data_loader.py`.\n\n"
                       "| date | config | workers | batch | images/s |\n|---|---|---|---|---|\n")
    with out.open("a") as f:
        f.write("\n".join(rows) + "\n")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; appended to {out}")


if __name__ == "__main__":
    main()
