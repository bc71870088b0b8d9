#!/usr/bin/env python3
"""Latency and peak memory of ZegFormer inference, and its CLIP image branch batched vs one segment at a time.

1. Per-image latency (median, p90) and peak memory of ZegFormer-seg, ZegFormer-img and ZegFormer (fusion), one
   model built with INFERENCE_MODE fusion whose ``inference_mode`` is switched between runs; random weights:
   - tiny: configs/zegformer_synthetic.yaml (64x64 images, 20 queries) with the tests' random open_clip model
     (tests/fixtures/tiny_clip.json: 64x64 input, width 64, 2 layers) as class embedder and image branch;
   - full (--full; the default on cuda only): configs/zegformer_coco.yaml, R101 + CLIP ViT-B/16, 640x853 images
     (a COCO image at the test size), 171 classes. On CPU both template sets are "single" (CLIP text encoding
     of 171 x 41 prompts takes many minutes there); the text embeddings are computed once, before timing.
2. ClipImageBranch.class_logits on one image with --segments masks (official NUM_OBJECT_QUERIES: 100), through
   one CLIP call per segment (CLIP_BATCH_SIZE 1: a loop over segments), the config's CLIP_BATCH_SIZE, and all
   segments in one call (the official code's single call); max abs difference of the logits to the loop's
   (must stay below 1e-4) and speed-up. Tiny CLIP on 192x256 images (640/224 of its 64 input, as in the real
   setting); with --full also ViT-B/16 (224) on the 640x853 image.
3. Parameters of configs/zegformer_coco.yaml (tools/count_parameters.py), compared with the official model's
   when --official-dir is given.

    python tools/benchmark_zegformer.py [--device cpu|cuda] [--iters 20] [--warmup 2] [--full | --no-full]
        [--full-iters N] [--full-warmup N] [--segments 100] [--official-dir DIR] [--output benchmarks/zegformer.md]

Peak memory over the timed calls: on CUDA ``torch.cuda.max_memory_allocated`` above the allocation before them;
on CPU the process's peak resident set (VmHWM, reset through /proc/self/clear_refs after returning freed heap
with malloc_trim) above the resident set before them. Exit status 1 if a batched path's logits differ.
"""
from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import count_parameters  # noqa: E402

REPO = count_parameters.REPO
TINY_CLIP = REPO / "tests" / "fixtures" / "tiny_clip.json"
MODES = ("seg", "img", "fusion")
MODE_NAMES = {"seg": "ZegFormer-seg", "img": "ZegFormer-img", "fusion": "ZegFormer (fusion)"}
TOLERANCE = 1e-4
MIB = 2 ** 20
FULL = "R101 + ViT-B/16, 640x853, 171 classes"


class PeakMemory:
    """Context manager: ``.peak`` = peak memory (bytes) above the start of the block, None if unmeasurable."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.peak: int | None = None

    @staticmethod
    def _status(field: str) -> int:
        return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
            self._base = self._status("VmRSS")
        except OSError:
            self._base = None
        return self

    def __exit__(self, *exc) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
        elif self._base is not None:
            self.peak = self._status("VmHWM") - self._base


def timed(fn: Callable[[int], object], device: torch.device, iters: int, warmup: int) -> dict:
    """Run ``fn(i)`` ``warmup`` times, then ``iters`` times timed one by one; ``{"median", "p90"}`` seconds,
    ``peak`` bytes over the timed calls, ``output`` of the last one."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for i in range(warmup):
        fn(i)
    times = []
    with PeakMemory(device) as memory:
        for i in range(iters):
            sync()
            start = time.perf_counter()
            output = fn(warmup + i)
            sync()
            times.append(time.perf_counter() - start)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90)), "peak": memory.peak,
            "output": output}


def build_zegformer(config: str, opts: list[str], device: torch.device, templates: str | None) -> tuple:
    """(ZegFormer in eval mode on ``device``, seconds to build it, seconds for the image-branch text embeddings)."""
    from detectron2.modeling import build_model

    cfg = count_parameters.load_cfg(str(REPO / config), opts)
    cfg.merge_from_list(["MODEL.DEVICE", str(device), "MODEL.ZEGFORMER.INFERENCE_MODE", "fusion"])
    if templates:
        cfg.merge_from_list(["MODEL.CLASS_EMBED.TEMPLATES", templates,
                             "MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES", templates])
    torch.manual_seed(0)
    start = time.perf_counter()
    model = build_model(cfg).eval()
    built = time.perf_counter()
    model.image_branch.text_embeddings(model.vocabulary.class_names)  # once per vocabulary, not per image
    return model, built - start, time.perf_counter() - built


def latency_rows(label: str, model, size: tuple[int, int], iters: int, warmup: int) -> list[dict]:
    """One row per inference mode: per-image latency and peak memory on random ``size`` images."""
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8) for _ in range(iters + warmup)]
    rows = []
    for mode in MODES:
        model.inference_mode = mode
        with torch.no_grad():
            r = timed(lambda i: model([{"image": images[i], "height": size[0], "width": size[1]}]), model.device,
                      iters, warmup)
        rows.append({"model": label, "mode": MODE_NAMES[mode], **r})
    model.inference_mode = "fusion"
    return rows


def segment_masks(n: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """``(n, H, W)`` mask logits (+-10) of ellipses from 0.1% to 50% of the image, every 20th one empty."""
    rng = np.random.default_rng(seed)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w]
    masks = np.full((n, h, w), -10.0, dtype=np.float32)
    for i in range(n):
        if i % 20 == 19:
            continue
        area = h * w * 10 ** rng.uniform(-3, np.log10(0.5))
        aspect = rng.uniform(0.3, 3.0)
        ry, rx = np.sqrt(area / np.pi / aspect), np.sqrt(area / np.pi * aspect)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        masks[i][((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1] = 10.0
    return torch.from_numpy(masks)


def sub_image_rows(label: str, model, size: tuple[int, int], segments: int, iters: int, warmup: int) -> list[dict]:
    """The model's image branch with 1 segment per CLIP call, the config's batch and all segments at once."""
    from zegcag.modeling.zegformer import ClipImageBranch

    base = model.image_branch
    image = torch.randint(0, 256, (3, *size), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    image, masks = image.to(model.device), segment_masks(segments, size).to(model.device)
    names = model.vocabulary.class_names
    rows = []
    default = min(base.batch_size, segments)
    for batch in dict.fromkeys((1, default, segments)):
        branch = ClipImageBranch(base.text_embedder, style=base.style, batch_size=batch, input_format=base.input_format)
        branch.text_embeddings(names)
        r = timed(lambda i: branch.class_logits(image, masks, names), model.device, iters, warmup)
        path = "loop: 1 segment per CLIP call" if batch == 1 else (
            f"all {segments} in one call (official)" if batch == segments else f"batched: CLIP_BATCH_SIZE {batch}")
        rows.append({"model": label, "path": path, "calls": -(-segments // batch), "style": base.style,
                     "default": batch == default, **r})
    for row in rows:
        row["speedup"] = rows[0]["median"] / row["median"]
        row["diff"] = (row["output"] - rows[0]["output"]).abs().max().item()
    return rows


def not_measured(args: argparse.Namespace, device: torch.device) -> list[tuple[str, str]]:
    """(device, reason) of the full-model measurements this run leaves out."""
    rows = []
    if device.type == "cpu" and not args.full:
        rows.append(("cpu", "skipped on CPU (pass --full; minutes per image)"))
    if device.type == "cuda" and not args.full:
        rows.append(("cuda", "skipped (--no-full)"))
    if device.type == "cpu":
        rows.append(("cuda", "no CUDA device on this machine" if not torch.cuda.is_available()
                     else "this run was on CPU (pass --device cuda)"))
    return rows


def mib(peak: int | None) -> str:
    return "n/a" if peak is None else f"{peak / MIB:.1f}"


def report(args: argparse.Namespace, device: torch.device, latency: list[dict], branch: list[dict],
           setup: list[str], params: list[str], load: tuple[float, float, float]) -> str:
    cmd = " ".join(["python tools/benchmark_zegformer.py", *args.argv])
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    lines = [
        "# ZegFormer inference: latency, peak memory, batched CLIP image branch",
        "",
        f"Generated by `{cmd}` on {datetime.date.today()}: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__} with {torch.get_num_threads()} "
        f"thread(s), niceness {os.nice(0)}{f', GPU {gpu}' if gpu else ''}; load average at the start "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (a shared machine slows every number). Random weights "
        "throughout: the speed does not depend on them.",
        "",
        "## Parameters",
        "",
        *params,
        "",
        "## Per-image latency and peak memory",
        "",
        *setup,
        "",
        "| model | device | inference | median (ms) | p90 (ms) | peak memory (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in latency:
        lines.append(f"| {r['model']} | {device.type} | {r['mode']} | {1e3 * r['median']:.1f} | {1e3 * r['p90']:.1f} "
                     f"| {mib(r['peak'])} |")
    for where, why in not_measured(args, device):
        lines.append(f"| {FULL} | {where} | all three | not measured: {why} | | |")
    lines += [
        "",
        "ZegFormer-img and ZegFormer do the same CLIP work (every query, CLIP_TOPK 0): a gap between them is the "
        "machine's noise, large with few timed images." + (" On a GPU: `python tools/benchmark_zegformer.py "
                                                             "--device cuda` (the full model is then included)."
                                                             if device.type == "cpu" else ""),
        "",
        f"## CLIP image branch: {args.segments} segments batched vs one segment per CLIP call",
        "",
        "| CLIP, image | path | CLIP calls | median (ms) | p90 (ms) | peak memory (MiB) | speed-up vs loop "
        "| max abs diff of logits vs loop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in branch:
        lines.append(f"| {r['model']} | {r['path']} | {r['calls']} | {1e3 * r['median']:.1f} | {1e3 * r['p90']:.1f} "
                     f"| {mib(r['peak'])} | {r['speedup']:.2f}x | {r['diff']:.1e} |")
    for where, why in not_measured(args, device):
        lines.append(f"| ViT-B/16 (224), 640x853, on {where} | all | | not measured: {why} | | | | |")
    worst = max(r["diff"] for r in branch)
    goal = "; ".join(f"{r['model']} on {device.type}: {r['speedup']:.2f}x ({'met' if r['speedup'] >= 2 else 'not met'})"
                     for r in branch if r["default"])
    lines += [
        "",
        f"Speed-up of the config's CLIP_BATCH_SIZE over the loop, goal at least 2x: {goal}.",
        "",
        f"`ClipImageBranch.class_logits` (style {branch[0]['style']}) on one random image with {args.segments} "
        "generated segment masks (ellipses of 0.1% to 50% of the image, every 20th one empty) against the model's "
        f"class names. Largest difference of any batched path to the loop: {worst:.1e} "
        f"({'within' if worst < TOLERANCE else 'ABOVE'} the {TOLERANCE:g} allowed). The official code also "
        "classifies all segments of an image in one CLIP call, after building full-resolution masked copies of "
        "the image for all of them; CLIP_BATCH_SIZE bounds that memory. Batching saves the per-call overhead: "
        "large next to a tiny CLIP, and on a GPU, where one sub-image per call leaves the device mostly idle; "
        "on a CPU the matrix products of ViT-B/16 are already large enough for one sub-image.",
        "",
        "Memory: " + ("CUDA memory allocated above the allocation before the timed calls." if device.type == "cuda"
                      else "peak resident set of the process above the resident set before the timed calls "
                           "(VmHWM; freed heap returned first with malloc_trim; includes allocator slack)."),
    ]
    return "\n".join(lines) + "\n"


def parameter_lines(official_dir: Path | None) -> list[str]:
    model = count_parameters.build_for_counting(str(REPO / "configs/zegformer_coco.yaml"))
    ours = count_parameters.parameter_counts(model)
    lines = [f"`configs/zegformer_coco.yaml` (R101): {ours[''] :,} parameters (backbone {ours['backbone']:,}, head "
             f"{ours['head']:,}); CLIP ViT-B/16 is loaded separately and is in neither state dict."]
    if official_dir is not None:
        official = count_parameters.official_model(official_dir.resolve(), count_parameters.OFFICIAL_COCO_R101)
        theirs = official["counts"][""]
        problems = count_parameters.conversion_problems(official["state_dict_shapes"], model)
        lines.append(f"Official model (`{count_parameters.OFFICIAL_COCO_R101}`, built from the official code): "
                     f"{theirs:,} parameters, of which 1 is its fixed logit scale; difference "
                     f"{(ours[''] - theirs) / theirs:+.4%}. Its {len(official['state_dict_shapes'])} state-dict keys "
                     + ("all convert to ours with equal shapes." if not problems
                        else f"do not all convert: {problems}"))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--iters", type=int, default=20, help="timed images per measurement (tiny model)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls before each measurement")
    p.add_argument("--full", action=argparse.BooleanOptionalAction, default=None,
                   help="also the R101 + ViT-B/16 model (default: on cuda only)")
    p.add_argument("--full-iters", type=int, help="timed images for the full model (default --iters)")
    p.add_argument("--full-warmup", type=int, help="untimed calls for the full model (default --warmup)")
    p.add_argument("--segments", type=int, default=100, help="segments per image in the image-branch comparison")
    p.add_argument("--official-dir", type=Path, help="checkout of the official ZegFormer, for its parameter count")
    p.add_argument("--output", type=Path, help="write the markdown report here (it is always printed)")
    args = p.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    args.full = device.type == "cuda" if args.full is None else args.full
    load = os.getloadavg()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    tiny_opts = ["MODEL.CLASS_EMBED.PROVIDER", "clip", "MODEL.CLASS_EMBED.CLIP_MODEL", TINY_CLIP.stem,
                 "MODEL.CLASS_EMBED.CLIP_PRETRAINED", "", "MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG", str(TINY_CLIP)]
    model, build_s, text_s = build_zegformer("configs/zegformer_synthetic.yaml", tiny_opts, device, None)
    tiny = f"tiny ({model.head.transformer_decoder.query_embed.num_embeddings} queries), 64x64, " \
           f"{len(model.vocabulary.class_names)} classes"
    latency = latency_rows(tiny, model, (64, 64), args.iters, args.warmup)
    branch = sub_image_rows("tiny CLIP (64), 192x256", model, (192, 256), args.segments, args.iters, args.warmup)
    setup = [f"Tiny: `configs/zegformer_synthetic.yaml` with the tiny random CLIP of the tests as class embedder and "
             f"image branch (built in {build_s:.1f} s, image-branch text embeddings {text_s:.2f} s)."]
    del model
    if args.full:
        iters = args.iters if args.full_iters is None else args.full_iters
        warmup = args.warmup if args.full_warmup is None else args.full_warmup
        clip_opts = ["MODEL.CLASS_EMBED.CLIP_PRETRAINED", ""]
        model, build_s, text_s = build_zegformer("configs/zegformer_coco.yaml", clip_opts, device,
                                                 "single" if device.type == "cpu" else None)
        clip = model.image_branch.text_embedder.load().model
        latency += latency_rows(FULL, model, (640, 853), iters, warmup)
        branch += sub_image_rows("ViT-B/16 (224), 640x853", model, (640, 853), args.segments, iters, warmup)
        setup.append(f"Full: `configs/zegformer_coco.yaml`, random R101 and CLIP ViT-B/16 "
                     f"({sum(t.numel() for t in clip.parameters()):,} CLIP parameters), built with the class "
                     f"embeddings in {build_s:.1f} s, image-branch text embeddings {text_s:.1f} s; {iters} timed "
                     f"images after {warmup} warm-up ones.")
    text = report(args, device, latency, branch, setup, parameter_lines(args.official_dir), load)
    if args.output:
        args.output.write_text(text)
    print(text, end="")
    bad = [r for r in branch if not r["diff"] < TOLERANCE]
    for r in bad:
        print(f"FAIL: {r['model']}, {r['path']}: max abs diff {r['diff']:.2e} >= {TOLERANCE:g}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
