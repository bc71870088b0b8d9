"""tools/train_net.py with ZegFormer on the tiny benchmark: train a few iterations, calibrate, evaluate;
then evaluate the checkpoint as the full model (CLIP fusion)."""
from __future__ import annotations

import json

import pytest
import torch

from zegformer_testing import TINY_CLIP_OPTS, TINY_ZEGFORMER_OPTS
from zegcag_testing import REPO, load_script

CONFIG = str(REPO / "configs/zegformer_synthetic.yaml")


def load_train_net():
    return load_script("tools/train_net.py")


@pytest.fixture(scope="module")
def finished_run(tiny_benchmark, tmp_path_factory):
    out = tmp_path_factory.mktemp("zegformer_run")
    train_net = load_train_net()
    args = train_net.parse_args(["--config-file", CONFIG, *TINY_ZEGFORMER_OPTS, *TINY_CLIP_OPTS,
                                 "TEST.GZS3.CALIBRATION_GAMMAS", "[0.0, 0.5, 1.0]", "OUTPUT_DIR", str(out)])
    train_net.main(args)
    return out


def test_training_writes_checkpoint_losses_calibration_and_results(finished_run):
    checkpoint = torch.load(finished_run / "model_final.pth", weights_only=False)
    assert checkpoint["iteration"] == 3
    assert not any("clip" in k or "class_embeddings" in k for k in checkpoint["model"])
    events = [json.loads(line) for line in (finished_run / "metrics.json").read_text().splitlines()]
    assert any("loss_dice_0" in e and "loss_ce" in e for e in events)
    calibration = json.loads((finished_run / "calibration.json").read_text())
    assert calibration["dataset"] == "zs3_test_calib" and len(calibration["candidates"]) == 3
    metrics = json.loads((finished_run / "eval_results.json").read_text())["zs3_test_val"]["sem_seg"]
    assert {"mIoU", "seen_mIoU", "unseen_mIoU", "hIoU"} <= set(metrics)


def test_eval_only_with_clip_fusion(finished_run):
    train_net = load_train_net()
    args = train_net.parse_args(["--config-file", CONFIG, "--eval-only", *TINY_ZEGFORMER_OPTS, *TINY_CLIP_OPTS,
                                 "MODEL.ZEGFORMER.INFERENCE_MODE", "fusion", "TEST.GZS3.CALIBRATION_DATASET", "",
                                 "MODEL.ZEGFORMER.CALIBRATION_GAMMA", "0.1",
                                 "OUTPUT_DIR", str(finished_run / "eval_fusion"),
                                 "MODEL.WEIGHTS", str(finished_run / "model_final.pth")])
    results = train_net.main(args)
    assert 0.0 <= results["sem_seg"]["pAcc"] <= 100.0
