#!/usr/bin/env python3
"""Segment your own images, videos or webcam with a trained zegcag model and any class vocabulary.

    python demo/demo.py --config-file configs/spnet_synthetic.yaml --weights RUN/model_final.pth \\
        --input photo.jpg [more.jpg | a_folder | "images/*.png"] --output out/ \\
        [--vocab classes.txt | --vocab-preset coco_stuff_171] [--confidence-threshold 0.5] [--opts KEY VALUE ...]

Per image it writes ``<stem>_overlay.png`` (the picture scaled to a legible size, class colours, a legend
of the classes present with their share), ``<stem>_labels.png`` (class ids indexing the vocabulary;
255, or 65535 above 255 classes, marks pixels under the confidence threshold) and ``<stem>.json``
(vocabulary, per-class pixel share and mean confidence, and the classes whose classifier CaGNet synthesised from
its generator for a new vocabulary). With one input, ``--output NAME.png`` names
the overlay and the others sit beside it (NAME_labels.png, NAME.json). A video gives a video of
overlays. Without --output the pictures are shown in a window.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
import tqdm

REPO = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_CODECS = {".avi": "MJPG", ".mp4": "mp4v", ".mkv": "mp4v", ".mov": "mp4v"}
WINDOW = "zegcag"
logger = logging.getLogger("demo")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", default=str(REPO / "configs/spnet_synthetic.yaml"), metavar="FILE")
    p.add_argument("--weights", help="trained checkpoint (default: the config's MODEL.WEIGHTS)")
    p.add_argument("--webcam", action="store_true", help="segment the webcam stream (shown in a window)")
    p.add_argument("--video-input", help="a video file")
    p.add_argument("--input", nargs="+", help="image files, folders or quoted globs ('imgs/*.jpg')")
    p.add_argument("--output", help="output folder, or one overlay file for a single input; default: show")
    vocab = p.add_mutually_exclusive_group()
    vocab.add_argument("--vocab", help="text file, one class per line ('a, b' synonyms, '#' comments), UTF-8")
    vocab.add_argument("--vocab-preset", help="class list of a split or registered dataset, e.g. coco_stuff_171")
    p.add_argument("--confidence-threshold", type=float, default=0.0,
                   help="pixels whose winning class probability is lower are left unlabelled")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="config overrides: KEY VALUE pairs")
    return p


def collect_inputs(entries: Sequence[str]) -> list[Path]:
    """Files, folders (their images, sorted) and globs -> distinct image paths, in the given order."""
    found: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not images:
                raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {path}")
            found += images
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(entry):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(entry), recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise FileNotFoundError(f"no file matches the pattern {entry!r}")
            found += matches
        else:
            raise FileNotFoundError(f"input file not found: {entry}")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return [Path(p) for p in unique]


def plan_outputs(inputs: Sequence[Path], output: str, overwrite: bool) -> list[dict[str, Path]]:
    """Output paths per input (keys overlay, labels, json); refuses clobbering unless ``overwrite``."""
    out = Path(output).expanduser()
    single_file = len(inputs) == 1 and not out.is_dir() and out.suffix.lower() in IMAGE_SUFFIXES
    if not single_file and out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--output {out} is an existing file, but {len(inputs)} input(s) need a "
                                 "folder; give a folder path (or NAME.png for a single image)")
    if single_file:
        plans = [{"overlay": out, "labels": out.with_name(out.stem + "_labels.png"), "json": out.with_suffix(".json")}]
    else:
        stems: dict[str, Path] = {}
        for path in inputs:
            if path.stem in stems:
                raise ValueError(f"inputs {stems[path.stem]} and {path} would write the same outputs "
                                 f"({path.stem}_*); run them separately or rename one")
            stems[path.stem] = path
        plans = [{"overlay": out / f"{p.stem}_overlay.png", "labels": out / f"{p.stem}_labels.png",
                  "json": out / f"{p.stem}.json"} for p in inputs]
    _check_targets([t for plan in plans for t in plan.values()], inputs, overwrite)
    return plans


def _check_targets(targets: Sequence[Path], inputs: Sequence[Path], overwrite: bool) -> None:
    sources = {p.resolve() for p in inputs}
    clash = [t for t in targets if t.resolve() in sources]
    if clash:
        raise ValueError(f"output {clash[0]} is one of the inputs; choose another --output")
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise FileExistsError(f"output file(s) already exist: {shown}; pass --overwrite to replace them")


def display_problem() -> str | None:
    """Why no window can be shown here, or None."""
    gui = re.search(r"GUI:\s*(\S+)", cv2.getBuildInformation())
    if gui and gui.group(1).upper() == "NONE":
        return "OpenCV has no GUI support here (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    return None


def load_vocabulary(args: argparse.Namespace) -> list[str] | None:
    from zegcag.data.vocabulary_file import preset_vocabulary, read_vocabulary_file

    if args.vocab:
        return read_vocabulary_file(args.vocab)
    if args.vocab_preset:
        return preset_vocabulary(args.vocab_preset)
    return None


def build_predictor(args: argparse.Namespace):
    from zegcag.engine.predictor import Predictor

    if len(args.opts) % 2:
        raise ValueError(f"--opts needs KEY VALUE pairs, got {len(args.opts)} items: {args.opts}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    overrides = dict(zip(args.opts[::2], args.opts[1::2]))
    predictor = Predictor(args.config_file, weights=args.weights, device=device, **overrides)
    predictor.set_vocabulary(load_vocabulary(args))
    return predictor


def low_confidence_id(num_classes: int) -> int:
    if num_classes <= 255:
        return 255
    if num_classes <= 65535:
        return 65535
    raise ValueError(f"a label PNG holds at most 65535 classes, the vocabulary has {num_classes}")


def segment(predictor, image_bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """-> labels (H, W) with low-confidence pixels set to ``low_confidence_id(K)``, confidence (H, W)."""
    out = predictor(image_bgr)
    labels, confidence = out["labels"].numpy(), out["confidence"].numpy()
    labels = np.where(confidence >= threshold, labels, low_confidence_id(len(out["classes"])))
    return labels, confidence


def overlay_bgr(predictor, image_bgr: np.ndarray, labels: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    from zegcag.utils.visualization import draw_prediction

    return draw_prediction(image_bgr[:, :, ::-1], labels, confidence, predictor.classes)[:, :, ::-1]


def summary(predictor, path: Path, labels: np.ndarray, confidence: np.ndarray, threshold: float,
            files: dict[str, Path]) -> dict:
    from zegcag.utils.visualization import display_scale, label_statistics

    classes = predictor.classes
    stats = label_statistics(labels, confidence, len(classes))
    low = labels >= len(classes)
    return {
        "input": str(path), "height": int(labels.shape[0]), "width": int(labels.shape[1]),
        "vocabulary": classes, "seen_in_training": sorted(predictor.vocabulary.seen),
        "synthesised_classes": predictor.synthesised_classes,
        "calibration_gamma": predictor.applied_gamma,
        "confidence_threshold": threshold, "low_confidence_id": low_confidence_id(len(classes)),
        "low_confidence_share": float(low.mean()),
        "classes": [{"id": s["id"], "name": classes[s["id"]], "share": float(s["share"]),
                     "mean_confidence": float(s["mean_confidence"])} for s in stats],
        "overlay_scale": display_scale(*labels.shape),
        "files": {k: str(v) for k, v in files.items()},
    }


def run_images(predictor, inputs: Sequence[Path], plans: list[dict[str, Path]] | None, threshold: float) -> None:
    from zegcag.data.mappers.zs3_semantic_mapper import read_image

    for i, path in enumerate(tqdm.tqdm(inputs, desc="demo", unit="image", disable=len(inputs) < 2)):
        image = read_image(str(path), "BGR")
        labels, confidence = segment(predictor, image, threshold)
        picture = overlay_bgr(predictor, image, labels, confidence)
        if plans is None:
            cv2.imshow(WINDOW, picture)
            if cv2.waitKey(0) == 27:  # Esc
                break
            continue
        plan = plans[i]
        plan["overlay"].parent.mkdir(parents=True, exist_ok=True)
        label_dtype = np.uint8 if low_confidence_id(len(predictor.classes)) == 255 else np.uint16
        for key, array in (("overlay", picture), ("labels", labels.astype(label_dtype))):
            if not cv2.imwrite(str(plan[key]), array):
                raise OSError(f"could not write {plan[key]}")
        with open(plan["json"], "w", encoding="utf-8") as f:
            json.dump(summary(predictor, path, labels, confidence, threshold, plan), f, indent=1, ensure_ascii=False)
    if plans is not None:
        logger.info(f"wrote {len(inputs)} overlay(s), label PNG(s) and JSON(s) to {plans[0]['overlay'].parent}")


def video_frames(capture: cv2.VideoCapture) -> Iterator[np.ndarray]:
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def run_video(predictor, capture: cv2.VideoCapture, target: Path | None, threshold: float, fps: float) -> int:
    """Overlay every frame; write them to ``target`` (or show them). Returns the number of frames."""
    writer, count = None, 0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    try:
        for frame in tqdm.tqdm(video_frames(capture), total=total, desc="demo", unit="frame"):
            picture = overlay_bgr(predictor, frame, *segment(predictor, frame, threshold))
            count += 1
            if target is None:
                cv2.imshow(WINDOW, picture)
                if cv2.waitKey(1) == 27:
                    break
                continue
            if writer is None:
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[target.suffix.lower()])
                writer = cv2.VideoWriter(str(target), fourcc, fps, (picture.shape[1], picture.shape[0]), True)
                if not writer.isOpened():
                    raise OSError(f"OpenCV cannot write the video {target}; try an .avi or .mp4 output")
            writer.write(picture)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    return count


def video_target(video: Path, output: str, overwrite: bool) -> Path:
    out = Path(output).expanduser()
    if out.is_dir() or not out.suffix:
        out = out / f"{video.stem}.mp4"
    if out.suffix.lower() not in VIDEO_CODECS:
        raise ValueError(f"--output {out}: unknown video type; use one of {sorted(VIDEO_CODECS)}")
    _check_targets([out], [video], overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def run(args: argparse.Namespace) -> None:
    sources = sum(bool(x) for x in (args.input, args.video_input, args.webcam))
    if sources != 1:
        raise ValueError("give exactly one of --input, --video-input or --webcam")
    if args.webcam and args.output:
        raise ValueError("--output is not supported with --webcam (frames are only shown)")
    problem = None if args.output else display_problem()
    if problem:
        raise RuntimeError(f"nowhere to show the result: {problem}. Pass --output DIR (or --output "
                           "NAME.png for one image) to write the overlay, label PNG and JSON instead")
    if not 0.0 <= args.confidence_threshold <= 1.0:
        raise ValueError(f"--confidence-threshold must be in [0, 1], got {args.confidence_threshold}")
    if args.input:
        inputs = collect_inputs(args.input)
        plans = plan_outputs(inputs, args.output, args.overwrite) if args.output else None
        run_images(build_predictor(args), inputs, plans, args.confidence_threshold)
        return
    if args.webcam:
        capture, target, fps = cv2.VideoCapture(0), None, 30.0
    else:
        video = Path(args.video_input).expanduser()
        if not video.is_file():
            raise FileNotFoundError(f"video file not found: {video}")
        target = video_target(video, args.output, args.overwrite) if args.output else None
        capture = cv2.VideoCapture(str(video))
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    if not capture.isOpened():
        raise OSError(f"OpenCV cannot open {'the webcam' if args.webcam else args.video_input}")
    frames = run_video(build_predictor(args), capture, target, args.confidence_threshold, fps)
    if target is not None:
        logger.info(f"wrote {frames} frame(s) to {target}")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = get_parser().parse_args(argv)
    try:
        run(args)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        message = e.args[0] if type(e) is KeyError and e.args else str(e)
        logger.debug("traceback", exc_info=True)
        logger.error("%s", message)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
