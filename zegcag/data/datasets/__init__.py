"""Registers every dataset under ``$DETECTRON2_DATASETS`` (default ``./datasets``); reads no dataset files."""
from .register_ade_full import register_all_ade_full
from .register_coco_stuff import register_all_coco_stuff
from .register_context import register_all_context
from .register_synthetic import register_all_synthetic, synthetic_folder_name
from .register_voc import register_all_voc
from .register_zs3_sem_seg import datasets_root, register_zs3_sem_seg
from .splits import ZS3Split, load_split

for _register in (register_all_synthetic, register_all_voc, register_all_coco_stuff, register_all_context,
                  register_all_ade_full):
    _register(datasets_root())

__all__ = ["ZS3Split", "load_split", "register_zs3_sem_seg", "datasets_root", "synthetic_folder_name"]
