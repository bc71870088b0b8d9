"""Registers every dataset under ``$DETECTRON2_DATASETS`` (default ``./datasets``); reads no files."""
from .register_synthetic import register_all_synthetic, synthetic_folder_name
from .register_zs3_sem_seg import datasets_root, register_zs3_sem_seg
from .splits import ZS3Split, load_split

register_all_synthetic(datasets_root())

__all__ = ["ZS3Split", "load_split", "register_zs3_sem_seg", "datasets_root", "synthetic_folder_name"]
