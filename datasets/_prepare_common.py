"""Shared pieces of the ``datasets/prepare_<ds>.py`` converters (standalone: they do not import zegcag).

Every converter writes one folder per split, ``<output-root>/zs3_<split>/``::

    images/{train,val}/<stem>.jpg        linked (default) or copied from the raw download
    labels/{train,val}/<stem>.png        class ids into the split's "classes", ignore_label elsewhere
    labels_seen/{train,val}/<stem>.png   with --write-seen-only: the same with unseen classes -> ignore_label
    prepare_info.json                    split name, command line, image counts

A run writes to ``zs3_<split>.incomplete/`` and renames it when done; an existing ``zs3_<split>/`` is only
replaced with --overwrite.

zegcag registers ``images`` and ``labels`` (see zegcag/data/datasets/register_<ds>.py); the training mapper
applies the zero-shot protocol, so ``labels_seen`` is only for use outside zegcag.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

logger = logging.getLogger("prepare")

PHASES = ("train", "val")


class PrepareError(Exception):
    """Bad input or refused output: reported as one line, exit status 1."""


@dataclass(frozen=True)
class Sample:
    """One image of the raw download: output file stem, image path, raw label path."""

    stem: str
    image: Path
    label: Path


def splits_dir() -> Path:
    """zegcag/data/splits of this checkout, else of the installed zegcag (located without importing it)."""
    local = Path(__file__).resolve().parent.parent / "zegcag" / "data" / "splits"
    if local.is_dir():
        return local
    spec = find_spec("zegcag")
    if spec is None or not spec.submodule_search_locations:
        raise PrepareError(f"split files not found at {local} and zegcag is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "splits"


def load_split_spec(name: str) -> dict:
    """The split file ``zegcag/data/splits/<name>.json`` as a dict (classes, unseen, ignore_label, ...)."""
    path = splits_dir() / f"{name}.json"
    if not path.is_file():
        raise PrepareError(f"split file not found: {path}")
    return json.loads(path.read_text())


def dataset_folder(output_root: Path, split_name: str) -> Path:
    """``<output-root>/zs3_<split>``: the folder register_<ds>.py expects."""
    return Path(output_root) / f"zs3_{split_name}"


def build_parser(description: str, raw_dir_help: str) -> argparse.ArgumentParser:
    """Parser with the options every converter shares."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw-dir", type=Path, required=True, help=raw_dir_help)
    parser.add_argument(
        "--output-root",
        type=Path,
        default=Path(os.environ.get("DETECTRON2_DATASETS", "datasets")),
        help="where zs3_<split>/ is written (default: $DETECTRON2_DATASETS, else ./datasets)",
    )
    parser.add_argument(
        "--write-seen-only",
        action="store_true",
        help="also write labels_seen/ (unseen classes -> ignore label) for use outside zegcag",
    )
    parser.add_argument(
        "--copy-images", action="store_true", help="copy images instead of symlinking them to the raw download"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    return parser


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Call ``main`` with logging set up; a PrepareError becomes a one-line message and exit status 1."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main(argv)
    except PrepareError as e:
        logger.error("error: %s", e)
        raise SystemExit(1) from None


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise PrepareError(f"missing folder {path}: expected {what}")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise PrepareError(f"missing file {path}: expected {what}")
    return path


def first_existing(candidates: Sequence[Path], what: str) -> Path:
    """The first candidate that exists; the error lists every candidate."""
    for path in candidates:
        if path.exists():
            return path
    raise PrepareError(f"{what} not found; looked for: {', '.join(str(p) for p in candidates)}")


def read_id_list(path: Path, what: str) -> list[str]:
    """Image ids of a VOC-style list file (first word of each non-empty line)."""
    ids = [line.split()[0] for line in require_file(path, what).read_text().splitlines() if line.strip()]
    if not ids:
        raise PrepareError(f"image list {path} is empty")
    return ids


def samples_from_ids(
    ids: Sequence[str], image_dir: Path, label_dir: Path, image_ext: str, label_ext: str
) -> list[Sample]:
    """Samples for listed ids; the error names the first id without an image or label file."""
    samples = [Sample(i, image_dir / f"{i}{image_ext}", label_dir / f"{i}{label_ext}") for i in ids]
    for s in samples:
        require_file(s.image, f"the image of '{s.stem}'")
        require_file(s.label, f"the label of '{s.stem}'")
    return samples


def class_lookup(raw_ids: Sequence[int], num_raw: int, ignore_label: int) -> np.ndarray:
    """(num_raw,) table: raw label value ``raw_ids[i]`` -> class i, every other value -> ignore_label."""
    if len(set(raw_ids)) != len(raw_ids) or min(raw_ids) < 0 or max(raw_ids) >= num_raw:
        raise ValueError(f"raw ids must be distinct and in 0..{num_raw - 1}: {list(raw_ids)}")
    table = np.full(num_raw, ignore_label, dtype=np.int64)
    table[np.asarray(raw_ids)] = np.arange(len(raw_ids))
    return table


def raw_ids_by_name(classes: Sequence[str], raw_classes: Sequence[str], split_name: str) -> list[int]:
    """Raw label value of each class, looked up by name in the raw label space's class list."""
    missing = [c for c in classes if c not in raw_classes]
    if missing:
        raise PrepareError(f"classes of split '{split_name}' not in the raw label space: {missing}")
    return [list(raw_classes).index(c) for c in classes]


def apply_lookup(raw: np.ndarray, table: np.ndarray, ignore_label: int, path: Path) -> np.ndarray:
    """(H, W) raw values -> (H, W) class ids; values beyond the table map to ignore_label."""
    if raw.ndim != 2:
        raise PrepareError(f"label {path} has shape {raw.shape}: expected a single-channel map of class ids")
    raw = raw.astype(np.int64, copy=False)
    inside = (raw >= 0) & (raw < len(table))
    return np.where(inside, table[np.clip(raw, 0, len(table) - 1)], ignore_label)


def read_index_png(path: Path) -> np.ndarray:
    """(H, W) values of a palette or grayscale PNG (palette indices, not colours)."""
    with Image.open(path) as img:
        if img.mode not in ("L", "P", "I", "I;16"):
            raise PrepareError(f"label {path} has mode {img.mode}: expected a palette or grayscale PNG of class ids")
        return np.asarray(img)


def save_label(path: Path, label: np.ndarray, ignore_label: int) -> None:
    """PNG of class ids: 8-bit when ignore_label is 255, else 16-bit (ADE20K-Full, ignore 65535)."""
    dtype = np.uint8 if ignore_label <= 255 else np.uint16
    Image.fromarray(label.astype(dtype)).save(path)


def place_image(src: Path, dst: Path, copy: bool) -> None:
    if copy:
        shutil.copyfile(src, dst)
    else:
        dst.symlink_to(src.resolve())


def start_output(folder: Path, overwrite: bool, write_seen_only: bool) -> Path:
    """Refuse an existing ``folder`` unless ``overwrite``; create and return its staging folder.

    Everything is written to ``<folder>.incomplete`` and moved into place by :func:`finish_output`, so an
    interrupted run never leaves a folder that looks complete, and --overwrite keeps the old data until then.
    """
    if folder.exists() and not overwrite:
        raise PrepareError(f"output folder {folder} already exists; pass --overwrite to replace it")
    staging = folder.with_name(folder.name + ".incomplete")
    if staging.exists():
        logger.info("removing %s left by an interrupted run", staging)
        shutil.rmtree(staging)
    subdirs = ("images", "labels", "labels_seen") if write_seen_only else ("images", "labels")
    for sub in subdirs:
        for phase in PHASES:
            (staging / sub / phase).mkdir(parents=True)
    return staging


def finish_output(staging: Path, folder: Path) -> None:
    if folder.exists():
        logger.info("replacing %s (--overwrite)", folder)
        shutil.rmtree(folder)
    staging.rename(folder)


def write_dataset(
    folder: Path,
    spec: dict,
    samples: Mapping[str, Sequence[Sample]],
    convert: Callable[[Sample], np.ndarray],
    args: argparse.Namespace,
    write_image: Callable[[Sample, Path], None] | None = None,
    extra_info: dict | None = None,
) -> None:
    """Write images and converted labels of every phase into ``folder`` (refusing to overwrite it).

    ``convert(sample)`` returns the (H, W) class-id label; ``write_image(sample, dst)`` defaults to
    linking/copying the raw image.
    """
    for phase in PHASES:
        if not samples.get(phase):
            raise PrepareError(f"no {phase} images found in {args.raw_dir}")
    ignore, unseen = int(spec["ignore_label"]), np.asarray(spec["unseen"], dtype=np.int64)
    staging = start_output(folder, args.overwrite, args.write_seen_only)
    for phase in PHASES:
        for s in tqdm(samples[phase], desc=f"{folder.name} {phase}", unit="img"):
            dst = staging / "images" / phase / f"{s.stem}{s.image.suffix}"
            if write_image is None:
                place_image(s.image, dst, args.copy_images)
            else:
                write_image(s, dst)
            label = convert(s)
            save_label(staging / "labels" / phase / f"{s.stem}.png", label, ignore)
            if args.write_seen_only:
                seen = np.where(np.isin(label, unseen), ignore, label)
                save_label(staging / "labels_seen" / phase / f"{s.stem}.png", seen, ignore)
    info = {
        "split": folder.name[len("zs3_"):],
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "raw_dir": str(Path(args.raw_dir).resolve()),
        "num_images": {phase: len(samples[phase]) for phase in PHASES},
        **(extra_info or {}),
    }
    (staging / "prepare_info.json").write_text(json.dumps(info, indent=2) + "\n")
    finish_output(staging, folder)
    logger.info("wrote %s (%s)", folder, ", ".join(f"{k}: {v}" for k, v in info["num_images"].items()))


def write_index_png_dataset(split_name: str, raw_split: str, samples: dict, args: argparse.Namespace) -> None:
    """Write ``split_name`` from raw single-channel PNGs whose ids follow ``raw_split``'s class list
    (classes are matched by name, everything else becomes the ignore label)."""
    spec = load_split_spec(split_name)
    raw_ids = raw_ids_by_name(spec["classes"], load_split_spec(raw_split)["classes"], split_name)
    table = class_lookup(raw_ids, 256, spec["ignore_label"])

    def convert(s: Sample) -> np.ndarray:
        return apply_lookup(read_index_png(s.label), table, spec["ignore_label"], s.label)

    write_dataset(dataset_folder(args.output_root, split_name), spec, samples, convert, args)
