"""Helpers shared by the tests: repo paths, configs with tiny overrides."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parent.parent
TEST_DATASET = "zs3_test"


def load_script(relative_path: str) -> ModuleType:
    """Import a script of the repo (tools/*.py, demo/demo.py) as a module, to call its functions in-process."""
    path = REPO / relative_path
    name = f"zegcag_script_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def make_cfg(config_file: str = "configs/spnet_synthetic.yaml", *opts):
    """A frozen-free config from a repo config file plus KEY VALUE overrides."""
    from detectron2.config import get_cfg
    from detectron2.projects.deeplab import add_deeplab_config

    from zegcag import add_zegcag_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_zegcag_config(cfg)
    cfg.merge_from_file(str(REPO / config_file))
    cfg.merge_from_list(list(opts))
    return cfg


TINY_SPNET_OPTS = (
    "DATASETS.TRAIN", f"('{TEST_DATASET}_train',)",
    "DATASETS.TEST", f"('{TEST_DATASET}_val',)",
    "TEST.GZS3.CALIBRATION_DATASET", f"{TEST_DATASET}_calib",
    "MODEL.SMALL_CONVNET.CHANNELS", "[8, 8]",
    "MODEL.SMALL_CONVNET.STRIDES", "[1, 2]",
    "MODEL.SMALL_CONVNET.DILATIONS", "[1, 1]",
    "INPUT.MIN_SIZE_TRAIN", "(32,)",
    "INPUT.MAX_SIZE_TRAIN", "32",
    "SOLVER.IMS_PER_BATCH", "4",
    "SOLVER.MAX_ITER", "4",
    "SOLVER.CHECKPOINT_PERIOD", "2",
    "DATALOADER.NUM_WORKERS", "0",
)


def tiny_cagnet_opts() -> tuple[str, ...]:
    """TINY_SPNET_OPTS (tiny benchmark, small backbone, 4 iterations) plus a tiny CaGNet with a short schedule."""
    return TINY_SPNET_OPTS + (
        "MODEL.CAGNET.FEATURE_DIM", "16",
        "MODEL.CAGNET.CONTEXT_CHANNELS", "8",
        "MODEL.CAGNET.GENERATOR_HIDDEN", "[32]",
        "MODEL.CAGNET.GENERATOR_DROPOUT", "[0.1]",
        "MODEL.CAGNET.CLASSIFIER_HIDDEN", "32",
        "MODEL.CAGNET.FAKE_MAP_SIZE", "6",
        "MODEL.CAGNET.FAKE_BATCH_SIZE", "2",
        "MODEL.CAGNET.PIXELCNN.CHANNELS", "8",
        "MODEL.CAGNET.PIXELCNN.BATCH_SIZE", "64",
        "MODEL.CAGNET.INITIAL_TRAIN_ITERS", "2",
        "MODEL.CAGNET.TRAIN_PERIOD", "2",
        "MODEL.CAGNET.FINETUNE_PERIOD", "2",
    )
