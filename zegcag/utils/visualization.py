"""Pictures of predictions: image | ground truth | prediction panels drawn with Detectron2's Visualizer."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.data.catalog import Metadata
from detectron2.utils.visualizer import ColorMode, Visualizer

from ..data.label_io import read_label


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
