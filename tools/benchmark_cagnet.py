#!/usr/bin/env python3
"""CaGNet speed, memory and FLOPs; writes benchmarks/cagnet.md with the paper's FLOPs/FPS table beside ours.

Per config (random weights: build_model loads no checkpoint, and speed does not depend on the values), at
the benchmark size S (INPUT.CROP.SIZE when cropping, e.g. the paper's 368 for VOC, else max MIN_SIZE_TRAIN):
1. counting job: fvcore FLOPs of the inference path E + CM (z = mu) + C on one S x S image (fvcore counts one
   FLOP per multiply-add; element-wise ops are not counted) and parameter counts per part;
2. timing job: inference latency per image (model([{"image"}]) in eval mode: preprocessing, E, CM, C, upsampling
   to S, calibration), then the finetuning step and the training step exactly as CaGNetStepper.run_step runs
   them (all optimizer updates included), on synthetic batches built in memory (no data loading), with peak
   memory after each stage (CPU: the process's peak RSS; CUDA: torch.cuda.max_memory_allocated).
Each job runs in a fresh Python process, so one config's memory does not leak into the next one's peak.
On CPU the training step of models above --cpu-train-max-gmacs per image is skipped (minutes per step).

    python tools/benchmark_cagnet.py [--device cpu|cuda] [--config-file A.yaml B.yaml] [--iters 20] [KEY VALUE ...]
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIGS = ["configs/cagnet_synthetic.yaml", "configs/cagnet_patch_synthetic.yaml",
                   "configs/cagnet_voc.yaml", "configs/cagnet_patch_voc.yaml"]
# Paper Table V (V100, 368 x 368 input; /work/shared/specs/cagnet.md Sec. 6): config file -> name, GFLOPs, FPS
PAPER = {"cagnet_voc.yaml": ("CaGNet(pi)", 102.98, 10.5), "cagnet_patch_voc.yaml": ("CaGNet(pa)", 103.25, 10.2)}
PAPER_SPNET_FPS = 15.8
PARTS = ("backbone", "aspp", "context_module", "classifier", "generator", "discriminator", "pixelcnn")
INFERENCE_PARTS = PARTS[:4]


# ---- worker side (runs in its own process) ----------------------------------------------------------
def build(job: dict):
    """-> (cfg, CaGNet model on job["device"]) from the job's config file and opts."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config

    import zegcag  # noqa: F401  registers datasets, embedders and models
    from zegcag import add_zegcag_config

    if job["device"] == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: torch.cuda.is_available() is False on this machine; use --device cpu")
    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_zegcag_config(cfg)
    cfg.merge_from_file(job["config"])
    cfg.merge_from_list(["MODEL.WEIGHTS", ""] + job["opts"] + ["MODEL.DEVICE", job["device"]])
    torch.manual_seed(0)
    model = build_model(cfg)
    for method in ("encode", "contextual", "forward_train", "forward_finetune"):
        if not hasattr(model, method):
            raise TypeError(f"{job['config']}: MODEL.META_ARCHITECTURE '{cfg.MODEL.META_ARCHITECTURE}' is not "
                            f"CaGNet-style (no {method}()); this benchmark measures CaGNet configs only")
    return cfg, model


def benchmark_size(cfg) -> int:
    """The square input side: the training crop when cropping (the paper's 368 for VOC), else max MIN_SIZE_TRAIN."""
    if cfg.INPUT.CROP.ENABLED and cfg.INPUT.CROP.TYPE == "absolute":
        return int(max(cfg.INPUT.CROP.SIZE))
    return int(max(cfg.INPUT.MIN_SIZE_TRAIN))


def count(job: dict) -> dict:
    """fvcore multiply-adds of E + CM (z = mu) + C per part at each size, and parameters per part."""
    import torch
    from fvcore.nn import FlopCountAnalysis, parameter_count

    cfg, model = build(job)
    model.eval()

    class InferencePath(torch.nn.Module):
        """``images: (1, 3, S, S)`` normalised -> classifier logits ``(1, K, h, w)``."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            x, _ = model.contextual(model.encode(images), sample=False)
            return model.classifier(x)

    sizes = [job["size"] or benchmark_size(cfg)] + [s for s in job["extra_flops_sizes"] if s != job["size"]]
    flops = {}
    for size in dict.fromkeys(sizes):
        with torch.no_grad():
            analysis = FlopCountAnalysis(InferencePath(), torch.randn(1, 3, size, size, device=model.device))
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            by_module = analysis.by_module()
            flops[str(size)] = {"total": analysis.total(), **{p: by_module.get(f"model.{p}", 0) for p in PARTS[:4]},
                                "not_counted": sorted(analysis.unsupported_ops())}
    params = parameter_count(model)
    return {"size": sizes[0], "flops": flops, "params": {"total": params[""], **{p: params.get(p, 0) for p in PARTS}}}


def _memory_mib(device: str) -> tuple[float | None, float]:
    """-> (current, peak) MiB: CPU RSS from /proc and ru_maxrss (Linux: KiB); CUDA allocated and max allocated."""
    import torch

    if device == "cuda":
        return torch.cuda.memory_allocated() / 2**20, torch.cuda.max_memory_allocated() / 2**20
    statm = Path("/proc/self/statm")
    current = int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20 if statm.exists() else None
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_calls(fn: Callable[[], None], sync: Callable[[], None], warmup: int, iters: int,
               max_seconds: float) -> list[float]:
    """Seconds of each timed call of ``fn``: ``warmup`` untimed calls, then up to ``iters`` timed ones (at least
    one), both loops also stopping once they have run ``max_seconds``."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
        sync()
        if time.perf_counter() - start > max_seconds:
            break
    times, start = [], time.perf_counter()
    while len(times) < iters and (not times or time.perf_counter() - start < max_seconds):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


def synthetic_batch(model, batch_size: int, size: int, seed: int = 0) -> list[dict]:
    """``batch_size`` dicts: random uint8 ``image: (3, S, S)`` and blocky ``sem_seg: (S, S)`` of seen classes
    (8 x 8 blocks of 8 px, a few ignored blocks), the mapper's output format (unseen classes already ignored)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    seen = model.seen_mask.nonzero()[:, 0].cpu()
    batch = []
    for _ in range(batch_size):
        blocks = seen[torch.randint(len(seen), (8, 8), generator=g)]
        blocks[torch.rand(8, 8, generator=g) < 0.1] = model.ignore_label
        labels = blocks.repeat_interleave(-(-size // 8), 0).repeat_interleave(-(-size // 8), 1)[:size, :size]
        image = torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "sem_seg": labels.long().contiguous(), "height": size, "width": size})
    return batch


def timing(job: dict) -> dict:
    """Inference latency, then finetuning and training steps (CaGNetStepper.run_step), with peak memory."""
    import torch
    from detectron2.utils.events import EventStorage

    from zegcag.engine.cagnet_trainer import CaGNetStepper, CaGNetTrainer, PhaseSchedule

    cfg, model = build(job)
    size = job["size"] or benchmark_size(cfg)
    sync = torch.cuda.synchronize if job["device"] == "cuda" else (lambda: None)
    budget = (job["warmup"], job["iters"], job["max_seconds"])
    out = {"threads": torch.get_num_threads(), "size": size, "skipped": {}, "device_name": (
        torch.cuda.get_device_name() if job["device"] == "cuda" else platform.processor() or platform.machine())}

    def stage(name: str, fn: Callable[[], None], **extra) -> None:
        if job["device"] == "cuda":
            torch.cuda.reset_peak_memory_stats()
        before, _ = _memory_mib(job["device"])
        times = time_calls(fn, sync, *budget)
        _, peak = _memory_mib(job["device"])
        out[name] = {"times": times, "mem_before": before, "mem_peak": peak, **extra}

    model.eval()
    image = synthetic_batch(model, 1, size)

    def infer() -> None:
        with torch.no_grad():
            model(image)

    stage("inference", infer)
    batch_size = job["batch_size"] or cfg.SOLVER.IMS_PER_BATCH
    stepper = CaGNetStepper(model, itertools.repeat(synthetic_batch(model, batch_size, size, seed=1)),
                            CaGNetTrainer.build_optimizers(cfg, model), PhaseSchedule(0, 0, 1),
                            cfg.MODEL.CAGNET.FAKE_BATCH_SIZE)
    with EventStorage(0) as storage:
        def step() -> None:
            stepper.run_step()
            stepper.iter = storage.iter = stepper.iter + 1

        if model.can_finetune:  # PhaseSchedule(0, 0, 1): every iteration a finetuning step
            side = cfg.MODEL.CAGNET.FAKE_MAP_SIZE
            stage("finetune", step, batch=f"{cfg.MODEL.CAGNET.FAKE_BATCH_SIZE} fake {side}x{side} maps")
        else:
            out["skipped"]["finetune"] = "no generator (MODEL.CAGNET.GENERATOR False)"
        gmacs = job.get("gmacs")
        if job["device"] == "cpu" and gmacs is not None and gmacs > job["cpu_train_max_gmacs"]:
            out["skipped"]["train"] = (f"{gmacs:.0f} GMACs per image > --cpu-train-max-gmacs "
                                    f"{job['cpu_train_max_gmacs']:g} on CPU")
        else:
            stepper.schedule = PhaseSchedule(10**9, 0, 0)  # every iteration a training step
            stage("train", step, batch=f"{batch_size} x {size}x{size}")
    return out


# ---- orchestration -----------------------------------------------------------------------------------
def run_job(kind: str, job: dict) -> dict:
    """Run ``count`` or ``timing`` for ``job`` in a fresh interpreter -> its result."""
    with tempfile.TemporaryDirectory(prefix="bench_cagnet_") as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, json.dumps(job), str(result)]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{kind} job for {job['config']} failed (exit {proc.returncode}):\n"
                               f"{proc.stderr[-3000:]}")
        return json.loads(result.read_text())


def _g(value: float) -> str:
    """Giga-units with 2 decimals, or 3 significant digits below 1."""
    return f"{value / 1e9:.2f}" if value >= 1e9 else f"{value / 1e9:.3g}"


def _stats(times: list[float]) -> str:
    return f"{np.median(times):.3f} / {np.percentile(times, 90):.3f} s (n={len(times)})"


def _mem(entry: dict, device: str) -> str:
    if device == "cuda":
        return f"{entry['mem_peak']:.0f} MiB (+{entry['mem_peak'] - entry['mem_before']:.0f})"
    rise = "" if entry["mem_before"] is None else f" (+{max(0.0, entry['mem_peak'] - entry['mem_before']):.0f})"
    return f"{entry['mem_peak']:.0f} MiB{rise}"


def paper_comparison(results: dict[str, dict]) -> list[str]:
    """Sentences comparing our counts with the paper's GFLOPs, for the configs the paper's table has."""
    lines = []
    for config, res in results.items():
        name, paper_gflops, _ = PAPER.get(Path(config).name, ("", None, None))
        if not name:
            continue
        flops = {int(size): f["total"] / 1e9 for size, f in res["count"]["flops"].items()}
        size = res["count"]["size"]
        closest = min(flops, key=lambda s: abs(flops[s] - paper_gflops))
        line = (f"- {name} (`{config}`): our count at {size}x{size} is {flops[size] / paper_gflops:.2f}x the paper's "
                f"{paper_gflops} GFLOPs as multiply-adds, {2 * flops[size] / paper_gflops:.2f}x as 2 FLOPs each.")
        if closest != size:
            line += f" At {closest}x{closest} we count {flops[closest]:.2f} GMACs, the closest to the paper's number."
        lines.append(line)
    if lines:
        lines += ["- The official code's E has the same shape as ours (DeepLab-v2 R101 at output stride 8, ASPP of "
                  "four dilated 3x3 convolutions 2048 -> 600, `back.n_classes: 600` in its configs/voc12.yaml), and "
                  "the ASPP costs about as much as the whole ResNet (table below); the paper names neither its "
                  "counting tool nor its convention.", ""]
    return lines


def render(results: dict[str, dict], args: argparse.Namespace, command: str, load: tuple[float, ...]) -> str:
    device = args.device
    first = next(iter(results.values()))["timing"]
    mem_note = ("peak torch.cuda.max_memory_allocated in the stage (+ rise above the allocation before it)"
                if device == "cuda" else "peak RSS of the process so far (+ rise above the RSS before the stage): "
                "inference runs first, then finetuning, then training, so each peak includes the model")
    lines = ["# CaGNet: training step, inference latency, peak memory and FLOPs", "",
             f"Generated by `{command}` on {datetime.date.today()}: {device} ({first['device_name']}), "
             f"{os.cpu_count()} cores, torch with {first['threads']} thread(s); load average at the start "
             f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (the machine is shared: other jobs ran beside this one "
             "and slow every time). Random weights; synthetic in-memory batches (data loading not included).", "",
             "## Paper (Table V: V100, 368x368) beside ours", "",
             "fvcore counts one FLOP per multiply-add (GMACs); the paper does not say which convention it used, so "
             "both are given (2 FLOPs per multiply-add = 2 x GMACs). Ours: inference path E + CM (z = mu) + C.", "",
             "| model | paper GFLOPs | paper FPS (V100) | config | input | ours GMACs (fvcore) | ours GFLOPs (2/MAC) "
             f"| ours FPS ({device}) |", "|---|---|---|---|---|---|---|---|"]
    for config, res in results.items():
        name, paper_gflops, paper_fps = PAPER.get(Path(config).name, ("", None, None))
        if not name:
            continue
        flops = res["count"]["flops"][str(res["count"]["size"])]["total"]
        times = res["timing"]["inference"]["times"]
        lines.append(f"| {name} | {paper_gflops} | {paper_fps} | `{config}` | {res['count']['size']} | {_g(flops)} "
                     f"| {_g(2 * flops)} | {1 / np.median(times):.3g} |")
    lines += [f"| SPNet | (not given) | {PAPER_SPNET_FPS} | | | | | |", ""] + paper_comparison(results) + [
              "## FLOPs of the inference path per part (fvcore GMACs, one image)", "",
              "| config | input | backbone | ASPP | CM | classifier | total | not counted (element-wise) |",
              "|---|---|---|---|---|---|---|---|"]
    for config, res in results.items():
        for size, f in res["count"]["flops"].items():
            parts = " | ".join(_g(f[p]) for p in INFERENCE_PARTS)
            lines.append(f"| `{config}` | {size} | {parts} | {_g(f['total'])} | {', '.join(f['not_counted'])} |")
    lines += ["", "## Parameters", "",
              "| config | total | inference path (E + CM + C) | " + " | ".join(PARTS) + " |",
              "|---|---|---|" + "---|" * len(PARTS)]
    for config, res in results.items():
        p = res["count"]["params"]
        lines.append(f"| `{config}` | {p['total']:,} | {sum(p[k] for k in INFERENCE_PARTS):,} | "
                     + " | ".join(f"{p[k]:,}" for k in PARTS) + " |")
    lines += ["", f"## Times and memory ({device})", "",
              "Median / 90th percentile per call. Inference: one image, batch 1. Steps: CaGNetStepper.run_step "
              "(forward, every optimizer update). Memory: " + mem_note + ".", "",
              "| config | input | inference per image | images/s | inference memory | finetuning step | "
              "finetuning memory | training step | training memory |", "|---|---|---|---|---|---|---|---|---|"]
    for config, res in results.items():
        t = res["timing"]
        row = [f"`{config}`", str(t["size"]), _stats(t["inference"]["times"]),
               f"{1 / np.median(t['inference']['times']):.3g}", _mem(t["inference"], device)]
        for stage in ("finetune", "train"):
            if stage in t:
                row += [f"{_stats(t[stage]['times'])}, {t[stage]['batch']}", _mem(t[stage], device)]
            else:
                row += [f"not measured: {t['skipped'][stage]}", "—"]
        lines.append("| " + " | ".join(row) + " |")
    if device == "cpu":
        lines += ["", "## GPU", "", "Not measured: no GPU lent to this task. The script supports it: "
                  "`python tools/benchmark_cagnet.py --device cuda` (training steps of the full R101 included)."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", nargs="+", default=DEFAULT_CONFIGS,
                   help="CaGNet configs (paths from here or the repo root)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--iters", type=int, default=20, help="timed calls per stage (at most)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls before each stage")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time budget of each warm-up and timed loop")
    p.add_argument("--input-size", type=int, help="square input side (default per config: see benchmark_size)")
    p.add_argument("--batch-size", type=int, help="training batch (default SOLVER.IMS_PER_BATCH)")
    p.add_argument("--extra-flops-sizes", type=int, nargs="*", default=[], help="also count FLOPs at these sides")
    p.add_argument("--cpu-train-max-gmacs", type=float, default=20.0,
                   help="on CPU, skip the training step of models with more GMACs per image than this")
    p.add_argument("--output", type=Path, default=REPO / "benchmarks/cagnet.md")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides for every config")
    args = p.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        p.error(f"--iters must be >= 1 and --warmup >= 0, got {args.iters} and {args.warmup}")
    for config in args.config_file:
        if not (Path(config).is_file() or (REPO / config).is_file()):
            p.error(f"--config-file {config}: no such file here or under {REPO}")
    return args


def main(argv: list[str] | None = None) -> dict[str, dict]:
    """Run both jobs for every config, write the report to --output -> {config: {"count", "timing"}}."""
    args = parse_args(argv)
    load = os.getloadavg()
    results = {}
    for config in args.config_file:
        path = Path(config) if Path(config).is_file() else REPO / config
        job = {"config": str(path.resolve()), "opts": list(args.opts), "device": args.device, "size": args.input_size,
               "extra_flops_sizes": args.extra_flops_sizes, "batch_size": args.batch_size, "iters": args.iters,
               "warmup": args.warmup, "max_seconds": args.max_seconds, "cpu_train_max_gmacs": args.cpu_train_max_gmacs}
        counted = run_job("count", job)
        job["gmacs"] = counted["flops"][str(counted["size"])]["total"] / 1e9
        results[config] = {"count": counted, "timing": run_job("timing", job)}
        print(f"{config}: {job['gmacs']:.2f} GMACs at {counted['size']}, {counted['params']['total'] / 1e6:.2f} M "
              "parameters", flush=True)
    command = "python tools/benchmark_cagnet.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = render(results, args, command.strip(), load)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(report)
    return results


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--worker":
        sys.path.insert(0, str(REPO))
        worker_result = {"count": count, "timing": timing}[sys.argv[2]](json.loads(sys.argv[3]))
        Path(sys.argv[4]).write_text(json.dumps(worker_result))
    else:
        main()
