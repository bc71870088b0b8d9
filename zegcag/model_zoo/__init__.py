"""Checkpoints shipped inside the package, addressed as ``zegcag://NAME`` (e.g. in ``MODEL.WEIGHTS``).

``synthetic_backbone.pth``: the small backbone of the synthetic configs, pretrained on the COCO-class synthetic
scenes without any class that a synthetic split makes unseen (configs/pretrain_synthetic_backbone.yaml; rebuilt
by ``make pretrained-backbone``). It plays the part ImageNet weights play on real benchmarks.
"""
from __future__ import annotations

from pathlib import Path

from detectron2.utils.file_io import PathHandler, PathManager

__all__ = ["MODEL_ZOO_DIR", "ZegcagHandler"]

MODEL_ZOO_DIR = Path(__file__).resolve().parent


class ZegcagHandler(PathHandler):
    """Resolves ``zegcag://NAME`` to the file NAME shipped in ``zegcag/model_zoo``."""

    PREFIX = "zegcag://"

    def _get_supported_prefixes(self) -> list[str]:
        return [self.PREFIX]

    def _shipped_file(self, path: str) -> Path:
        return MODEL_ZOO_DIR / path[len(self.PREFIX):]

    def _get_local_path(self, path: str, **kwargs) -> str:
        local = self._shipped_file(path)
        if not local.is_file():
            shipped = sorted(p.name for p in MODEL_ZOO_DIR.glob("*.pth"))
            raise FileNotFoundError(f"{path}: no such checkpoint in {MODEL_ZOO_DIR} (shipped: {shipped}); "
                                    "`make pretrained-backbone` rebuilds synthetic_backbone.pth")
        return str(local)

    def _open(self, path: str, mode: str = "r", **kwargs):
        return PathManager.open(self._get_local_path(path), mode, **kwargs)

    def _exists(self, path: str, **kwargs) -> bool:
        return self._shipped_file(path).is_file()


PathManager.register_handler(ZegcagHandler())
