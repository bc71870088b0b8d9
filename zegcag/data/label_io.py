"""Reading and checking label maps: single-channel PNGs of class ids."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image


def read_label(path: str) -> np.ndarray:
    """(H, W) integer array of a single-channel label PNG (uint8 or uint16)."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise ValueError(f"label file {path} has mode {img.mode}: expected a single-channel PNG of class ids")
            return np.asarray(img).astype(np.int64, copy=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"label file not found: {path}") from None
    except OSError as e:
        raise OSError(f"cannot read label file {path}: {e}") from None


def check_label_ids(label: np.ndarray, num_classes: int, ignore_label: int, path: str) -> None:
    """Raise ValueError naming ``path`` and the ids that are neither a class nor the ignore label."""
    bad = label[(label >= num_classes) & (label != ignore_label)]
    if bad.size:
        ids = np.unique(bad)[:10].tolist()
        raise ValueError(
            f"label file {path} holds ids {ids} outside the {num_classes} classes (0..{num_classes - 1}) "
            f"and not the ignore label {ignore_label}"
        )


def class_lookup(num_classes: int, keep: Sequence[int], ignore_label: int) -> np.ndarray:
    """Lookup table over ids 0..max(num_classes, ignore_label): ids in ``keep`` map to themselves, others to ignore."""
    table = np.full(max(num_classes, ignore_label + 1), ignore_label, dtype=np.int64)
    table[list(keep)] = list(keep)
    return table
