"""Predictor and demo with a tiny random CaGNet on a new vocabulary: the classes synthesised from the generator
are reported (output dict, log, JSON); names without word vectors are an error listing them all."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import pytest
import torch

from demo_testing import TINY_MODEL_OPTS, flat
from zegcag.embeddings.word_vectors import MissingWordVectorError
from zegcag.engine.predictor import Predictor
from zegcag_testing import REPO

CAGNET_CONFIG = str(REPO / "configs/cagnet_synthetic.yaml")
TINY_CAGNET_OPTS = {
    **TINY_MODEL_OPTS,
    "MODEL.CAGNET.FEATURE_DIM": "16",
    "MODEL.CAGNET.CONTEXT_CHANNELS": "8",
    "MODEL.CAGNET.GENERATOR_HIDDEN": "[32]",
    "MODEL.CAGNET.GENERATOR_DROPOUT": "[0.1]",
    "MODEL.CAGNET.CLASSIFIER_HIDDEN": "32",
}
NEW = ["sheep", "sofa", "cat"]


@pytest.fixture(scope="module")
def cagnet_weights(tmp_path_factory) -> Path:
    """model_final.pth of a randomly initialised tiny CaGNet (seed 0)."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from zegcag_testing import make_cfg

    torch.manual_seed(0)
    model = build_model(make_cfg("configs/cagnet_synthetic.yaml", *flat(TINY_CAGNET_OPTS)))
    folder = tmp_path_factory.mktemp("cagnet")
    DetectionCheckpointer(model, save_dir=str(folder)).save("model_final")
    return folder / "model_final.pth"


@pytest.fixture
def predictor(cagnet_weights) -> Predictor:
    return Predictor(CAGNET_CONFIG, weights=str(cagnet_weights), **TINY_CAGNET_OPTS)


def read(image_dir, i=0):
    return cv2.imread(str(image_dir / f"scene{i}.png"))


def test_predictor_reports_the_synthesised_classes(predictor, image_dir, caplog):
    trained = predictor(read(image_dir))
    assert predictor.synthesised_classes == trained["synthesised_classes"] == []
    with caplog.at_level(logging.INFO, logger="zegcag"):
        predictor.set_vocabulary(NEW)
    assert "classes synthesised from the generator: sheep, sofa, cat" in caplog.text
    out = predictor(read(image_dir))
    assert out["sem_seg"].shape == (3, 32, 48) and out["classes"] == NEW
    assert out["synthesised_classes"] == predictor.synthesised_classes == NEW
    assert torch.allclose(out["confidence"], out["sem_seg"].softmax(0).max(0).values)
    predictor.set_vocabulary(None)
    again = predictor(read(image_dir))
    assert again["synthesised_classes"] == [] and torch.equal(again["sem_seg"], trained["sem_seg"])


def test_names_without_word_vectors_are_listed_and_the_vocabulary_is_kept(predictor, image_dir):
    predictor.set_vocabulary(NEW)
    with pytest.raises(MissingWordVectorError) as err:
        predictor.set_vocabulary(["sheep", "flumph", "grue"])
    message = str(err.value)
    assert "2 class name(s): 'flumph', 'grue'" in message and "MODEL.CLASS_EMBED.PROVIDER clip" in message
    assert predictor.classes == predictor.synthesised_classes == NEW
    assert predictor(read(image_dir))["sem_seg"].shape[0] == 3


def run_demo(demo_module, weights, *args) -> int:
    argv = ["--config-file", CAGNET_CONFIG, "--weights", str(weights), *map(str, args),
            "--opts", *flat(TINY_CAGNET_OPTS)]
    return demo_module.main(argv)


def test_demo_json_names_the_synthesised_classes(demo_module, cagnet_weights, image_dir, tmp_path):
    vocab = tmp_path / "classes.txt"
    vocab.write_text("\n".join(NEW) + "\n", encoding="utf-8")
    assert run_demo(demo_module, cagnet_weights, "--input", image_dir / "scene0.png", "--vocab", vocab,
                    "--output", tmp_path / "new") == 0
    summary = json.loads((tmp_path / "new" / "scene0.json").read_text(encoding="utf-8"))
    assert summary["vocabulary"] == summary["synthesised_classes"] == NEW
    assert summary["seen_in_training"] == [] and summary["calibration_gamma"] == 0.0
    assert run_demo(demo_module, cagnet_weights, "--input", image_dir / "scene0.png", "--output", tmp_path / "old") == 0
    summary = json.loads((tmp_path / "old" / "scene0.json").read_text(encoding="utf-8"))
    assert summary["synthesised_classes"] == [] and len(summary["vocabulary"]) == 21


def test_demo_error_lists_every_name_without_a_vector(demo_module, cagnet_weights, image_dir, tmp_path, caplog):
    vocab = tmp_path / "classes.txt"
    vocab.write_text("sheep\nflumph\ngrue\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="demo"):
        code = run_demo(demo_module, cagnet_weights, "--input", image_dir / "scene0.png", "--vocab", vocab,
                        "--output", tmp_path / "out")
    assert code == 2
    assert "'flumph', 'grue'" in caplog.text and "MODEL.CLASS_EMBED.PROVIDER clip" in caplog.text
    assert not (tmp_path / "out").exists()


def test_benchmark_tool_scores_unseen_pixels_with_the_unseen_only_vocabulary(tiny_benchmark, cagnet_weights, tmp_path):
    from zegcag.data.datasets import load_split
    from zegcag.evaluation.generalized_sem_seg_evaluation import read_label_png
    from zegcag_testing import TEST_DATASET, load_script

    tool = load_script("tools/benchmark_cagnet_vocabulary.py")
    output = tmp_path / "unseen_only.json"
    argv = ["--config-file", CAGNET_CONFIG, "--weights", str(cagnet_weights), "--dataset", f"{TEST_DATASET}_val",
            "--output", str(output), "--opts", *flat(TINY_CAGNET_OPTS)]
    assert tool.main(argv) == 0
    results = json.loads(output.read_text())
    split = load_split("synthetic")
    unseen_names = [split.class_names[c] for c in split.unseen]
    assert results["vocabulary"] == results["synthesised_classes"] == unseen_names
    labels = [read_label_png(p) for p in sorted((tiny_benchmark / "labels" / "val").glob("*.png"))]
    expected = {split.class_names[c]: sum(int((gt == c).sum()) for gt in labels) for c in split.unseen}
    assert results["pixels_per_class"] == expected and sum(expected.values()) > 0
    assert results["chance_pAcc"] == pytest.approx(100 / len(unseen_names))
    for key in ("fitted", "trained_unseen_rows"):
        assert 0.0 <= results[key]["pAcc"] <= 100.0 and set(results[key]) >= {"mIoU", "mAcc", "IoU-sheep"}
    assert tool.main(argv) == 2  # the output exists: not overwritten without --overwrite


def test_benchmark_tool_takes_the_unseen_classes_from_the_config(tiny_benchmark, cagnet_weights, tmp_path):
    """DATASETS.ZS3.UNSEEN_CLASSES (split B) decides the vocabulary, not the dataset's registered unseen list."""
    from zegcag_testing import TEST_DATASET, load_script

    tool = load_script("tools/benchmark_cagnet_vocabulary.py")
    output = tmp_path / "split_b.json"
    split_b = ["bicycle", "bottle", "cat", "dining table", "horse"]
    argv = ["--config-file", CAGNET_CONFIG, "--weights", str(cagnet_weights), "--dataset", f"{TEST_DATASET}_val",
            "--output", str(output), "--opts", *flat(TINY_CAGNET_OPTS), "DATASETS.ZS3.UNSEEN_CLASSES", str(split_b)]
    assert tool.main(argv) == 0
    assert json.loads(output.read_text())["vocabulary"] == split_b


def test_chance_miou_is_that_of_uniformly_random_labels():
    import numpy as np

    from zegcag.evaluation.metrics import confusion_matrix, segmentation_metrics
    from zegcag_testing import load_script

    tool = load_script("tools/benchmark_cagnet_vocabulary.py")
    rng = np.random.default_rng(0)
    gt = rng.choice(4, size=400_000, p=[0.1, 0.2, 0.3, 0.4])
    conf = confusion_matrix(gt, rng.integers(0, 4, size=gt.size), 4, 255)
    measured = segmentation_metrics(conf, seen=[], unseen=range(4))
    chance = tool.chance_levels(conf.sum(1))
    assert chance["chance_mIoU"] == pytest.approx(measured["mIoU"], abs=0.2)
    assert chance["chance_pAcc"] == pytest.approx(measured["pAcc"], abs=0.3)
    assert tool.unseen_only_labels(np.array([[0, 3, 5], [255, 5, 4]]), [5, 3], 255).tolist() == [[255, 1, 0],
                                                                                                  [255, 0, 255]]
