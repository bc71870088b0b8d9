#!/usr/bin/env python3
"""Regenerate docs/demo_example.png: the demo's overlay of a generated synthetic scene.

    python tools/make_demo_picture.py --overwrite                      # trains a small SPNet first (~1.5 min CPU)
    python tools/make_demo_picture.py --weights RUN/model_final.pth    # or uses a trained synthetic SPNet

The scene is drawn by the synthetic benchmark's generator (zegcag/data/synthetic.py) with a fixed seed,
at 96x96 pixels; the vocabulary is a user file listing the classes in the scene plus distractors. The
demo command run is printed, so the README's example can be repeated by hand.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import shlex
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "configs/spnet_synthetic.yaml"
DISTRACTORS = ("cow", "boat")
# a smaller SPNet than the config's, so that training fits in about a minute on 2 CPU cores
SMALL_MODEL = {"MODEL.SMALL_CONVNET.CHANNELS": "[16, 32, 32, 32]", "MODEL.SMALL_CONVNET.STRIDES": "[1, 2, 1, 1]",
               "MODEL.SMALL_CONVNET.DILATIONS": "[1, 1, 2, 1]"}
logger = logging.getLogger("make_demo_picture")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, help="a trained SPNet of --config-file (default: train one now)")
    p.add_argument("--config-file", type=Path, default=CONFIG)
    p.add_argument("--iters", type=int, default=600, help="training iterations when no --weights")
    p.add_argument("--scene-seed", type=int, default=1, help="seed of the generated scene")
    p.add_argument("--output", type=Path, default=REPO / "docs/demo_example.png")
    p.add_argument("--work-dir", type=Path, help="keep the scene, vocabulary, run and demo outputs here")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides for --weights' model")
    return p.parse_args(argv)


def train_small_spnet(work: Path, config: Path, iters: int) -> Path:
    """SPNet of ``config`` (with SMALL_MODEL) trained ``iters`` iterations, batch 8, on 1000 generated 64x64
    images -> model_final.pth."""
    from detectron2.utils.env import seed_all_rng
    from detectron2.utils.logger import setup_logger

    from zegcag.data.datasets import load_split, register_zs3_sem_seg
    from zegcag.data.synthetic import SyntheticBenchmarkConfig, generate_benchmark
    from zegcag.engine import Trainer
    from zegcag.engine.predictor import build_predictor_cfg

    setup_logger(name="fvcore")
    setup_logger(name="detectron2", abbrev_name="d2")
    folder = generate_benchmark(work / "datasets", SyntheticBenchmarkConfig(num_train=1000, num_val=0, num_calib=0))
    register_zs3_sem_seg("zs3_demo_picture_train", load_split("synthetic"), folder / "images/train",
                         folder / "labels/train", prepare_hint="tools/make_demo_picture.py", image_ext=".png")
    cfg = build_predictor_cfg(str(config), **SMALL_MODEL, **{
        "DATASETS.TRAIN": ("zs3_demo_picture_train",), "DATASETS.TEST": (), "TEST.GZS3.CALIBRATION_DATASET": "",
        "SOLVER.IMS_PER_BATCH": 8, "SOLVER.MAX_ITER": iters, "SOLVER.CHECKPOINT_PERIOD": 10 * iters,
        "DATALOADER.NUM_WORKERS": 0, "OUTPUT_DIR": str(work / "run")})
    seed_all_rng(0)  # model initialisation and the training sampler's order
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return work / "run" / "model_final.pth"


def make_scene(work: Path, seed: int) -> tuple[Path, Path]:
    """A 96x96 synthetic scene (BGR PNG) and a vocabulary file: background, its classes, distractors."""
    from zegcag.data.datasets import load_split
    from zegcag.data.synthetic import SyntheticBenchmarkConfig, class_appearance, make_tiles, object_class_embeddings
    from zegcag.data.synthetic import render_scene

    split = load_split("synthetic")
    cfg = replace(SyntheticBenchmarkConfig(), image_size=96, min_objects=3, max_objects=4)
    appearance = class_appearance(object_class_embeddings(split), cfg)
    image, label = render_scene(np.random.default_rng([seed, 99]), appearance, make_tiles(cfg), cfg)
    present = [split.class_names[i] for i in np.unique(label)]
    names = present + [d for d in DISTRACTORS if d not in present]
    image_path, vocab_path = work / "scene.png", work / "my_classes.txt"
    cv2.imwrite(str(image_path), image[:, :, ::-1])
    vocab_path.write_text("# classes to look for, one per line\n" + "\n".join(names) + "\n", encoding="utf-8")
    unseen = [split.class_names[i] for i in split.unseen if split.class_names[i] in present]
    logger.info(f"scene classes: {present} (unseen in training: {unseen}); vocabulary: {names}")
    return image_path, vocab_path


def run_demo(argv: list[str]) -> None:
    spec = importlib.util.spec_from_file_location("zegcag_demo", REPO / "demo/demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    if demo.main(argv) != 0:
        raise RuntimeError("the demo failed (see the error above)")


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.output.exists() and not args.overwrite:
        logger.error(f"{args.output} exists; pass --overwrite to regenerate it")
        return 2
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="demo_picture_") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        weights = args.weights or train_small_spnet(work, args.config_file, args.iters)
        image, vocab = make_scene(work, args.scene_seed)
        demo_argv = ["--config-file", str(args.config_file), "--weights", str(weights), "--input", str(image),
                     "--vocab", str(vocab), "--output", str(work / "demo_out"), "--overwrite"]
        opts = args.opts if args.weights else [x for kv in SMALL_MODEL.items() for x in kv]
        if opts:
            demo_argv += ["--opts", *opts]
        logger.info("demo command: python demo/demo.py " + shlex.join(demo_argv))
        run_demo(demo_argv)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        overlay = cv2.imread(str(work / "demo_out" / "scene_overlay.png"))
        cv2.imwrite(str(args.output), overlay, [cv2.IMWRITE_PNG_COMPRESSION, 9])  # half the size of the default
    logger.info(f"wrote {args.output} ({args.output.stat().st_size / 1024:.0f} KiB) in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
