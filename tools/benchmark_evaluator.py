#!/usr/bin/env python
"""Throughput of the generalized zero-shot evaluator on generated label maps; writes benchmarks/evaluator.md.

Maps are piecewise constant (warped Voronoi regions plus elliptic objects and a few ignore blobs); the
prediction is the ground truth under a smooth displacement of up to 3 px with a few wrong blobs, which is
what an arg-maxed, upsampled score map looks like. Measured per size (500x375 = VOC, 640x640):
in-memory images/s of the confusion part and of the boundary part (one process, --num-images maps), and
the wall time of tools/evaluate_predictions.py --workers N (PNG reading included) on as many files as VOC
val has (1,449; hard links cycling through the generated pairs).

    python tools/benchmark_evaluator.py --workers 2
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evaluate_predictions  # noqa: E402

from zegcag.evaluation import boundary_counts, confusion_matrix_with_invalid  # noqa: E402

NUM_CLASSES, IGNORE, VOC_VAL = 21, 255, 1449


def _smooth_field(shape: tuple[int, int], sigma: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return f * (amplitude / (np.abs(f).max() + 1e-9))


def make_pair(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """-> gt (H, W) uint8 with ignore blobs, pred (H, W) uint8."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    seeds = rng.uniform((0, 0), (h, w), size=(int(rng.integers(4, 9)), 2))
    wy, wx = ys + _smooth_field((h, w), 20, 15, rng), xs + _smooth_field((h, w), 20, 15, rng)
    region = ((wy[None] - seeds[:, :1, None]) ** 2 + (wx[None] - seeds[:, 1:, None]) ** 2).argmin(0)
    gt = rng.integers(0, NUM_CLASSES, size=len(seeds)).astype(np.uint8)[region]
    for _ in range(int(rng.integers(1, 5))):
        cy, cx, ry, rx = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, h / 4), rng.uniform(10, w / 4)
        gt[((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1] = rng.integers(0, NUM_CLASSES)
    for _ in range(2):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, 15)
        gt[(ys - cy) ** 2 + (xs - cx) ** 2 <= r * r] = IGNORE
    sy = np.clip(np.rint(ys + _smooth_field((h, w), 8, 3, rng)), 0, h - 1).astype(int)
    sx = np.clip(np.rint(xs + _smooth_field((h, w), 8, 3, rng)), 0, w - 1).astype(int)
    pred = gt[sy, sx]
    pred[pred == IGNORE] = 0
    for _ in range(3):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(5, 30)
        pred[(ys - cy) ** 2 + (xs - cx) ** 2 <= r * r] = rng.integers(0, NUM_CLASSES)
    return gt, pred


def time_in_memory(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float]:
    """-> images/s of the confusion part, of the boundary part, mean boundary pixels per GT map."""
    t0 = time.perf_counter()
    for gt, pred in pairs:
        confusion_matrix_with_invalid(gt, pred, NUM_CLASSES, IGNORE)
    t1 = time.perf_counter()
    n_gt = sum(boundary_counts(gt, pred, ignore_label=IGNORE).num_gt for gt, pred in pairs)
    t2 = time.perf_counter()
    return len(pairs) / (t1 - t0), len(pairs) / (t2 - t1), n_gt / len(pairs)


def time_end_to_end(folder: Path, workers: int, boundary: bool) -> float:
    """Seconds tools/evaluate_predictions.py takes on ``folder``/{gt,pred}, PNG reading included."""
    argv = ["--gt-dir", str(folder / "gt"), "--pred-dir", str(folder / "pred"), "--num-classes", str(NUM_CLASSES),
            "--unseen", "16,17,18,19,20", "--workers", str(workers), "--output", str(folder / "m.json"), "--overwrite"]
    args = evaluate_predictions.parse_args(argv + (["--boundary"] if boundary else []))
    t0 = time.perf_counter()
    evaluate_predictions.run(args)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--num-images", type=int, default=64, help="generated maps per size")
    p.add_argument("--output", type=Path, default=Path("benchmarks/evaluator.md"))
    args = p.parse_args()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    rng = np.random.default_rng(0)
    rows = []
    for h, w in ((375, 500), (640, 640)):
        pairs = [make_pair(h, w, rng) for _ in range(args.num_images)]
        conf_ips, bnd_ips, n_gt = time_in_memory(pairs)
        with tempfile.TemporaryDirectory() as tmp:
            for sub, k in (("gt", 0), ("pred", 1)):
                (Path(tmp) / sub).mkdir()
                for i, pair in enumerate(pairs):
                    Image.fromarray(pair[k]).save(Path(tmp) / sub / f"u{i:05d}.png")
                for i in range(VOC_VAL):
                    os.link(Path(tmp) / sub / f"u{i % len(pairs):05d}.png", Path(tmp) / sub / f"{i:05d}.png")
                for i in range(len(pairs)):
                    (Path(tmp) / sub / f"u{i:05d}.png").unlink()
            e2e = time_end_to_end(Path(tmp), args.workers, boundary=False)
            e2e_b = time_end_to_end(Path(tmp), args.workers, boundary=True)
        rows.append((f"{w}x{h}", conf_ips, bnd_ips, n_gt, e2e, e2e_b))
        print(f"{w}x{h}: confusion {conf_ips:.0f} img/s, boundary {bnd_ips:.1f} img/s (1 process, in memory); "
              f"CLI --workers {args.workers} on {VOC_VAL} maps: {e2e:.1f} s, with --boundary {e2e_b:.1f} s")
    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        models = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")]
        cpu = models[0] if models else cpu
    lines = [
        "# Evaluator throughput",
        "",
        f"Generated by `python tools/benchmark_evaluator.py --workers {args.workers} --num-images {args.num_images}` "
        f"on {datetime.date.today().isoformat()}: {os.cpu_count()} cores (nproc), {cpu}; "
        f"Python {platform.python_version()}, "
        f"NumPy {np.__version__}, SciPy {scipy.__version__}. Maps: {args.num_images} generated pairs per size "
        "(see the script's docstring); boundary tolerance 0.0075 x diagonal.",
        "",
        f"| size (WxH) | confusion img/s (1 proc) | boundary img/s (1 proc) | GT boundary px/map "
        f"| CLI, {VOC_VAL} maps, {args.workers} workers | CLI --boundary, {VOC_VAL} maps, {args.workers} workers |",
        "|---|---|---|---|---|---|",
    ]
    for size, conf_ips, bnd_ips, n_gt, e2e, e2e_b in rows:
        lines.append(f"| {size} | {conf_ips:.0f} | {bnd_ips:.1f} | {n_gt:.0f} "
                     f"| {e2e:.1f} s ({VOC_VAL / e2e:.0f} img/s) | {e2e_b:.1f} s ({VOC_VAL / e2e_b:.0f} img/s) |")
    lines += ["", f"Targets (VOC val: 500x375, {VOC_VAL} maps, 2 workers): with boundary under 120 s, "
              "without under 15 s.",
              "CLI columns are wall times including PNG reading and worker start-up. "
              "Load average when the run started: "
              f"{load} (the machine may be shared, which slows every column)."]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
