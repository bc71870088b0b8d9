"""zegcag Predictor on a tiny SPNet: vocabulary caching, calibration, preprocessing, strict checkpoints."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from demo_testing import CONFIG, GAMMA, TINY_MODEL_OPTS, save_random_spnet
from zegcag.embeddings.word_vectors import MissingWordVectorError
from zegcag.engine.predictor import IncompatibleCheckpointError, Predictor
from zegcag_testing import REPO


@pytest.fixture
def predictor(spnet_weights) -> Predictor:
    return Predictor(CONFIG, weights=str(spnet_weights), **TINY_MODEL_OPTS)


def count_text_encodings(predictor: Predictor) -> list[int]:
    """Wrap the embedder's encoding step (run only on a cache miss); returns a live one-item counter."""
    embedder = predictor.model.class_embedder
    encode, calls = embedder._embed_synonyms, [0]

    def counted(synonyms):
        calls[0] += 1
        return encode(synonyms)

    embedder._embed_synonyms = counted
    return calls


def read(image_dir, i=0):
    return cv2.imread(str(image_dir / f"scene{i}.png"))


def test_same_vocabulary_encodes_text_once(predictor, image_dir):
    calls = count_text_encodings(predictor)
    predictor.set_vocabulary(["cat", "dog", "horse"])
    assert calls[0] == 1
    first, second = predictor(read(image_dir, 0)), predictor(read(image_dir, 1))
    predictor.set_vocabulary(["cat", "dog", "horse"])
    assert calls[0] == 1
    assert first["classes"] == second["classes"] == ["cat", "dog", "horse"]
    assert first["sem_seg"].shape == (3, 32, 48)

    predictor.set_vocabulary(["sheep", "cow"])
    assert calls[0] == 2 and predictor(read(image_dir))["sem_seg"].shape[0] == 2
    predictor.set_vocabulary(["cat", "dog", "horse"])  # back to a vocabulary embedded before: memory cache
    assert calls[0] == 2 and predictor.classes == ["cat", "dog", "horse"]


def test_outputs_are_consistent(predictor, image_dir):
    out = predictor(read(image_dir))
    assert out["labels"].shape == out["confidence"].shape == (32, 48)
    assert torch.equal(out["labels"], out["sem_seg"].argmax(0))
    assert torch.allclose(out["confidence"], out["sem_seg"].softmax(0).max(0).values)
    assert len(out["classes"]) == 21


def test_bgr_input_matches_the_model_on_rgb(predictor, image_dir):
    """INPUT.FORMAT is RGB: the predictor flips OpenCV's BGR before the model."""
    bgr = read(image_dir)
    rgb = torch.as_tensor(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1)))
    with torch.no_grad():
        expected = predictor.model([{"image": rgb, "height": 32, "width": 48}])[0]["sem_seg"]
    assert torch.allclose(predictor(bgr)["sem_seg"], expected)
    assert not torch.allclose(predictor(np.ascontiguousarray(bgr[:, :, ::-1]))["sem_seg"], expected)


def test_resize_to_min_size_test_and_back(spnet_weights, image_dir):
    predictor = Predictor(CONFIG, str(spnet_weights), INPUT__MIN_SIZE_TEST=64, **TINY_MODEL_OPTS)
    assert predictor.cfg.INPUT.MIN_SIZE_TEST == 64
    seen_sizes = []
    predictor.model.backbone.register_forward_hook(lambda m, i, o: seen_sizes.append(tuple(i[0].shape[-2:])))
    out = predictor(read(image_dir))
    assert seen_sizes == [(64, 96)] and out["labels"].shape == (32, 48)


def test_calibration_applies_to_the_training_vocabulary_only(predictor, image_dir):
    assert predictor.calibration_gamma == GAMMA and predictor.model.calibration_gamma == GAMMA
    assert predictor.applied_gamma == GAMMA and predictor.vocabulary.seen
    training_names = list(predictor.classes)
    calibrated = predictor(read(image_dir))["sem_seg"]

    predictor.set_vocabulary(training_names[::-1])  # another order: a user vocabulary
    assert not predictor.vocabulary.seen and predictor.applied_gamma == 0.0
    predictor.set_vocabulary(training_names)  # the same list again: the training vocabulary
    assert predictor.vocabulary == predictor.training_vocabulary
    predictor.set_vocabulary(None)
    assert predictor.vocabulary == predictor.training_vocabulary

    predictor.model.calibration_gamma = 0.0
    raw = predictor(read(image_dir))["sem_seg"]
    seen = predictor.vocabulary.seen_mask()
    assert torch.allclose((raw - calibrated)[seen], torch.full_like(raw[seen], GAMMA), atol=1e-5)
    assert torch.allclose(raw[~seen], calibrated[~seen])


def test_no_calibration_file_means_gamma_from_config(tmp_path):
    weights = save_random_spnet(tmp_path / "run", TINY_MODEL_OPTS, gamma=None)
    predictor = Predictor(CONFIG, str(weights), **{"MODEL.SPNET.CALIBRATION_GAMMA": 0.25}, **TINY_MODEL_OPTS)
    assert predictor.calibration_gamma is None and predictor.applied_gamma == 0.25


def test_missing_word_vectors_listed_and_previous_vocabulary_kept(predictor, image_dir):
    predictor.set_vocabulary(["cat", "dog"])
    with pytest.raises(MissingWordVectorError) as err:
        predictor.set_vocabulary(["cat", "flibbertigibbet", "zorglub"])
    assert "'flibbertigibbet', 'zorglub'" in str(err.value) and "PROVIDER clip" in str(err.value)
    assert predictor.classes == ["cat", "dog"]
    assert predictor(read(image_dir))["sem_seg"].shape[0] == 2


def test_weights_of_another_architecture(tmp_path):
    other = save_random_spnet(tmp_path / "wide", {**TINY_MODEL_OPTS, "MODEL.SMALL_CONVNET.CHANNELS": "[8, 16]"}, None)
    with pytest.raises(IncompatibleCheckpointError, match=r"keys of another shape .*backbone"):
        Predictor(CONFIG, str(other), **TINY_MODEL_OPTS)
    foreign = tmp_path / "resnet.pth"
    torch.save({"model": {"stem.conv1.weight": torch.zeros(64, 3, 7, 7)}}, foreign)
    with pytest.raises(IncompatibleCheckpointError) as err:
        Predictor(CONFIG, str(foreign), **TINY_MODEL_OPTS)
    assert "missing keys" in str(err.value) and "unexpected keys (1): stem.conv1.weight" in str(err.value)


def test_bad_arguments(spnet_weights, predictor, tmp_path):
    with pytest.raises(ValueError, match="no weights"):
        Predictor(CONFIG, **{**TINY_MODEL_OPTS, "MODEL.WEIGHTS": ""})
    # the synthetic configs' MODEL.WEIGHTS is the pretrained backbone training starts from, not a trained model
    with pytest.raises(IncompatibleCheckpointError, match="starting weights of training"):
        Predictor(CONFIG, **TINY_MODEL_OPTS)
    with pytest.raises(FileNotFoundError, match="weights file not found: .*nothing.pth"):
        Predictor(CONFIG, str(tmp_path / "nothing.pth"), **TINY_MODEL_OPTS)
    with pytest.raises(FileNotFoundError, match="config file not found"):
        Predictor(str(tmp_path / "none.yaml"), str(spnet_weights))
    with pytest.raises(ValueError, match=r"\(H, W, 3\) BGR image"):
        predictor(np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        predictor(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(TypeError, match="single string"):
        predictor.set_vocabulary("cat")


def test_unreadable_calibration_file(tmp_path):
    weights = save_random_spnet(tmp_path / "run", TINY_MODEL_OPTS, gamma=None)
    (tmp_path / "run" / "calibration.json").write_text('{"dataset": "x"}')
    with pytest.raises(ValueError, match="calibration.json has no valid 'gamma' entry"):
        Predictor(CONFIG, str(weights), **TINY_MODEL_OPTS)


@pytest.mark.parametrize("config", ["zegformer_synthetic", "cagnet_synthetic", "zs3net_synthetic"])
def test_other_meta_architectures(config, tmp_path, image_dir):
    """Any model with set_vocabulary and [{"sem_seg"}] outputs works. CaGNet-style models fit a classifier
    on generated features for a new vocabulary and say which classes were synthesised."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    from zegcag.engine.predictor import build_predictor_cfg

    config_file = str(REPO / f"configs/{config}.yaml")
    torch.manual_seed(0)
    DetectionCheckpointer(build_model(build_predictor_cfg(config_file)), save_dir=str(tmp_path)).save("model_final")
    predictor = Predictor(config_file, str(tmp_path / "model_final.pth"))
    out = predictor(read(image_dir))
    assert out["sem_seg"].shape == (21, 32, 48) and ((out["confidence"] > 0) & (out["confidence"] <= 1)).all()
    predictor.set_vocabulary(["cat", "dog", "sofa"])
    assert predictor(read(image_dir))["sem_seg"].shape == (3, 32, 48)
    assert predictor.synthesised_classes == ([] if "zegformer" in config else ["cat", "dog", "sofa"])
