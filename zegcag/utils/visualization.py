"""Pictures of predictions drawn with Detectron2's Visualizer.

* ``save_prediction_panels``: image | ground truth | prediction panels for a test loader (quick start).
* ``draw_prediction``: a demo overlay: the image scaled up to a legible size (``display_scale``), class
  colours over it, and a legend column on the right listing the classes present with their share.

Shapes: H, W image size; K classes; s the integer display scale; L the legend width.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.data.catalog import Metadata
from detectron2.utils.visualizer import ColorMode, VisImage, Visualizer
from matplotlib.patches import Rectangle

from ..data.label_io import read_label

MIN_DISPLAY_SIDE = 256  # small images are scaled up (integer factor) until their shorter side reaches this
MAX_DISPLAY_SIDE = 2048  # ... unless their longer side would pass this
NAME_CHARS = 24  # longer class names are shortened in the legend
LOW_CONFIDENCE_COLOR = (128, 128, 128)


def class_colors(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct RGB colours: evenly spaced hues at two brightness levels."""
    colors = []
    for i in range(num_classes):
        hue = (i * 0.618033988749895) % 1.0
        value = 255 if i % 2 == 0 else 170
        hsv = np.uint8([[[int(hue * 179), 200, value]]])
        colors.append(tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]))
    return colors


def draw_labels(image_rgb: np.ndarray, labels: np.ndarray, class_names: Sequence[str], scale: float) -> np.ndarray:
    """Overlay of a (H, W) label map on an (H, W, 3) RGB image, class names written on the regions."""
    meta = Metadata(stuff_classes=list(class_names), stuff_colors=class_colors(len(class_names)))
    vis = Visualizer(image_rgb, metadata=meta, scale=scale, instance_mode=ColorMode.IMAGE)
    return vis.draw_sem_seg(labels, alpha=0.5).get_image()


def display_scale(height: int, width: int) -> int:
    """Integer factor s >= 1 bringing the shorter side to MIN_DISPLAY_SIDE, the longer kept <= MAX_DISPLAY_SIDE."""
    wanted = math.ceil(MIN_DISPLAY_SIDE / max(1, min(height, width)))
    allowed = max(1, MAX_DISPLAY_SIDE // max(1, max(height, width)))
    return max(1, min(wanted, allowed))


def label_statistics(labels: np.ndarray, confidence: np.ndarray, num_classes: int) -> list[dict]:
    """Per present class (by decreasing share): ``id``, ``share`` of all pixels, ``mean_confidence``.

    ``labels``: (H, W) ids, values >= ``num_classes`` (low confidence) are not listed; ``confidence``: (H, W).
    """
    labels = np.asarray(labels).reshape(-1)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    valid = labels < num_classes
    counts = np.bincount(labels[valid], minlength=num_classes)
    sums = np.bincount(labels[valid], weights=confidence[valid], minlength=num_classes)
    present = np.flatnonzero(counts)
    present = present[np.argsort(-counts[present], kind="stable")]
    return [{"id": int(k), "share": counts[k] / labels.size, "mean_confidence": sums[k] / counts[k]} for k in present]


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel of ``mask`` (H, W) farthest from its border: a label there sits inside the region
    (the centroid of a ring or of a region with holes can lie outside it)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return float(x) + 0.5, float(y) + 0.5


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _legend_metrics(height: int, class_names: Sequence[str]) -> tuple[int, float, int]:
    """Row height (px), font size (px) and legend width (px) for a picture ``height`` px tall."""
    row = int(np.clip(round(height / 14), 16, 32))
    font = 0.62 * row
    longest = max([len(_short(n)) for n in class_names] + [len("low confidence")])
    # DejaVu Sans averages ~0.6 em per character; "100.0%" is the widest share
    width = int(row * 1.6 + 0.62 * font * (longest + 8))
    return row, font, width


def draw_legend(rows: Sequence[tuple[tuple[int, int, int], str, float]], height: int, width: int,
                row_height: int, font_px: float) -> np.ndarray:
    """(height, width, 3) RGB column: one (colour swatch, name, share) per row, top to bottom."""
    canvas = VisImage(np.full((height, width, 3), 30, dtype=np.uint8))
    points = font_px * 72.0 / canvas.dpi
    pad = row_height * 0.3
    for i, (color, name, share) in enumerate(rows):
        y = pad + i * row_height
        swatch = row_height * 0.75
        canvas.ax.add_patch(Rectangle((pad, y + (row_height - swatch) / 2), swatch, swatch,
                                      facecolor=np.asarray(color) / 255.0, edgecolor="white", linewidth=0.8))
        canvas.ax.text(pad * 2 + swatch, y + row_height / 2, _short(name), color="white", fontsize=points,
                       va="center", ha="left", family="sans-serif")
        share_text = f"{100 * share:.1f}%" if share >= 0.0005 else "<0.1%"
        canvas.ax.text(width - pad, y + row_height / 2, share_text, color="white", fontsize=points,
                       va="center", ha="right", family="sans-serif")
    return canvas.get_image()


def draw_prediction(image_rgb: np.ndarray, labels: np.ndarray, confidence: np.ndarray,
                    class_names: Sequence[str], *, alpha: float = 0.5, text_min_share: float = 0.03) -> np.ndarray:
    """Demo picture: ``(H*s, W*s + L, 3)`` RGB; left the image scaled by ``s = display_scale(H, W)`` with
    class colours (ids >= K, the low-confidence pixels, in grey), right a legend of the classes present.

    ``labels``: (H, W) ids into ``class_names``; ``confidence``: (H, W). Colours depend on the class id only,
    so they stay the same across images and video frames; so does L (it depends on ``class_names``).
    """
    height, width = labels.shape
    num_classes = len(class_names)
    scale = display_scale(height, width)
    colors = class_colors(num_classes)
    stats = label_statistics(labels, confidence, num_classes)
    vis = Visualizer(image_rgb, metadata=Metadata(stuff_classes=list(class_names)), scale=scale,
                     instance_mode=ColorMode.IMAGE)
    for entry in stats:
        vis.draw_binary_mask(labels == entry["id"], color=np.asarray(colors[entry["id"]]) / 255.0,
                             edge_color=(1.0, 1.0, 240.0 / 255), alpha=alpha)
    low = labels >= num_classes
    if low.any():
        vis.draw_binary_mask(low, color=np.asarray(LOW_CONFIDENCE_COLOR) / 255.0, alpha=0.7)
    for entry in stats:
        if entry["share"] >= text_min_share:
            x, y = interior_point(labels == entry["id"])
            light = 1.0 - 0.4 * (1.0 - np.asarray(colors[entry["id"]]) / 255.0)  # readable on the dark text box
            vis.draw_text(_short(class_names[entry["id"]]), (x, y), color=light)
    picture = vis.output.get_image()

    rows = [(colors[e["id"]], class_names[e["id"]], e["share"]) for e in stats]
    if low.any():
        rows.append((LOW_CONFIDENCE_COLOR, "low confidence", float(low.mean())))
    row_height, font_px, legend_width = _legend_metrics(picture.shape[0], class_names)
    capacity = max(1, int((picture.shape[0] - 0.6 * row_height) // row_height))
    if len(rows) > capacity:
        rest = rows[capacity - 1:]
        rows = rows[: capacity - 1] + [((30, 30, 30), f"+{len(rest)} more", sum(r[2] for r in rest))]
    legend = draw_legend(rows, picture.shape[0], legend_width, row_height, font_px)
    return np.concatenate([picture, legend], axis=1)


@torch.no_grad()
def save_prediction_panels(model, data_loader, dataset_name: str, out_dir: Path, max_images: int = 6,
                           scale: float = 4.0) -> list[Path]:
    """Write ``<stem>.png`` panels (image | ground truth | prediction) for the first images of a test loader."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    class_names = MetadataCatalog.get(dataset_name).stuff_classes
    written = []
    model.eval()
    for inputs in data_loader:
        for x, out in zip(inputs, model(inputs)):
            image = cv2.cvtColor(cv2.imread(x["file_name"]), cv2.COLOR_BGR2RGB)
            pred = out["sem_seg"].argmax(0).cpu().numpy()
            gt = read_label(x["sem_seg_file_name"])
            panels = [cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST),
                      draw_labels(image, gt, class_names, scale), draw_labels(image, pred, class_names, scale)]
            path = out_dir / f"{Path(x['file_name']).stem}.png"
            cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(panels, axis=1), cv2.COLOR_RGB2BGR))
            written.append(path)
            if len(written) >= max_images:
                return written
    return written
