"""demo/demo.py end to end on generated images and a generated video with tiny random SPNets."""
from __future__ import annotations

import json
import logging
import shutil

import cv2
import numpy as np
import pytest

from demo_testing import CLIP_OPTS, CONFIG, GAMMA, TINY_MODEL_OPTS, flat, save_random_spnet
from zegcag.data.datasets import load_split
from zegcag.engine.predictor import IncompatibleCheckpointError, Predictor
from zegcag.utils.visualization import display_scale


@pytest.fixture
def demo(demo_module, spnet_weights):
    """demo(*args) -> run the demo with the tiny SPNet (args parsed by the real parser)."""

    def call(*args, opts=TINY_MODEL_OPTS, weights=spnet_weights):
        argv = ["--config-file", CONFIG, "--weights", str(weights), *map(str, args), "--opts", *flat(opts)]
        demo_module.run(demo_module.get_parser().parse_args(argv))

    return call


def read_label_png(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def check_outputs(out_dir, stem, height=32, width=48):
    """The three files of one image exist and agree with each other; returns (labels, summary)."""
    summary = json.loads((out_dir / f"{stem}.json").read_text(encoding="utf-8"))
    labels = read_label_png(out_dir / f"{stem}_labels.png")
    overlay = cv2.imread(str(out_dir / f"{stem}_overlay.png"))
    num_classes = len(summary["vocabulary"])
    assert labels.shape == (height, width)
    valid = labels < num_classes
    assert np.all(valid | (labels == summary["low_confidence_id"]))
    scale = summary["overlay_scale"]
    assert scale == display_scale(height, width) and overlay.shape[0] == height * scale
    assert overlay.shape[1] > width * scale  # image, then the legend column
    shares = {c["id"]: c["share"] for c in summary["classes"]}
    assert sum(shares.values()) + summary["low_confidence_share"] == pytest.approx(1.0)
    ids, counts = np.unique(labels[valid], return_counts=True)
    assert shares == pytest.approx(dict(zip(ids.tolist(), (counts / labels.size).tolist())))
    assert all(0.0 <= c["mean_confidence"] <= 1.0 for c in summary["classes"])
    return labels, summary


def test_directory_of_images(demo, image_dir, tmp_path):
    demo("--input", image_dir, "--output", tmp_path / "out")
    for i in range(3):
        labels, summary = check_outputs(tmp_path / "out", f"scene{i}")
        assert summary["vocabulary"] == list(load_split("synthetic").class_names)
        assert summary["calibration_gamma"] == GAMMA and summary["low_confidence_share"] == 0.0
    assert len(list((tmp_path / "out").iterdir())) == 9


def test_glob_and_single_output_file(demo, image_dir, tmp_path):
    demo("--input", str(image_dir / "scene[12].png"), "--output", tmp_path / "glob")
    assert sorted(p.name for p in (tmp_path / "glob").glob("*.json")) == ["scene1.json", "scene2.json"]
    demo("--input", image_dir / "scene0.png", "--output", tmp_path / "one" / "result.png")
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["result.json", "result.png", "result_labels.png"]


def test_labels_match_the_predictor_and_threshold(demo, image_dir, spnet_weights, tmp_path):
    image = cv2.imread(str(image_dir / "scene0.png"))
    out = Predictor(CONFIG, str(spnet_weights), **TINY_MODEL_OPTS)(image)
    threshold = float(out["confidence"].median())
    demo("--input", image_dir / "scene0.png", "--output", tmp_path, "--confidence-threshold", threshold)
    labels, summary = check_outputs(tmp_path, "scene0")
    low = out["confidence"].numpy() < threshold
    assert 0 < low.sum() < low.size
    assert np.array_equal(labels, np.where(low, 255, out["labels"].numpy()))
    assert summary["low_confidence_share"] == pytest.approx(low.mean())


def test_user_vocabulary_file_and_preset(demo, image_dir, tmp_path):
    vocab = tmp_path / "classes.txt"
    vocab.write_text("# animals\ncat\nmotorbike,motorcycle\nhorse \n", encoding="utf-8")
    demo("--input", image_dir / "scene0.png", "--output", tmp_path / "a", "--vocab", vocab)
    labels, summary = check_outputs(tmp_path / "a", "scene0")
    assert summary["vocabulary"] == ["cat", "motorbike, motorcycle", "horse"]
    assert summary["calibration_gamma"] == 0.0 and summary["seen_in_training"] == []
    assert labels.max() < 3
    demo("--input", image_dir / "scene0.png", "--output", tmp_path / "b", "--vocab-preset", "voc")
    assert check_outputs(tmp_path / "b", "scene0")[1]["vocabulary"] == list(load_split("voc").class_names)


def test_one_class_vocabulary(demo, image_dir, tmp_path):
    (tmp_path / "one.txt").write_text("sky\n")
    demo("--input", image_dir / "scene0.png", "--output", tmp_path, "--vocab", tmp_path / "one.txt")
    labels, summary = check_outputs(tmp_path, "scene0")
    assert np.all(labels == 0) and summary["classes"] == [{"id": 0, "name": "sky", "share": 1.0,
                                                            "mean_confidence": 1.0}]


def test_847_classes_with_clip(demo, image_dir, clip_spnet_weights, tmp_path):
    names = load_split("ade_full_847").class_names
    (tmp_path / "ade.txt").write_text("\n".join(names), encoding="utf-8")
    demo("--input", image_dir / "scene0.png", "--output", tmp_path, "--vocab", tmp_path / "ade.txt",
         opts={**TINY_MODEL_OPTS, **CLIP_OPTS}, weights=clip_spnet_weights)
    labels, summary = check_outputs(tmp_path, "scene0")
    assert len(summary["vocabulary"]) == 847 and summary["low_confidence_id"] == 65535
    assert labels.dtype == np.uint16


def test_video_keeps_the_frame_count(demo, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (48, 32))
    rng = np.random.default_rng(0)
    for _ in range(7):
        writer.write(cv2.resize(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), (48, 32)))
    writer.release()
    demo("--video-input", video, "--output", tmp_path / "out")
    result = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    frames = []
    while True:
        ok, frame = result.read()
        if not ok:
            break
        frames.append(frame.shape)
    assert len(frames) == 7 and frames[0][0] == 32 * display_scale(32, 48)


def test_nothing_overwritten_without_flag(demo, image_dir, tmp_path):
    demo("--input", image_dir, "--output", tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    with pytest.raises(FileExistsError, match="already exist: .*scene0_overlay.png.*--overwrite"):
        demo("--input", image_dir, "--output", tmp_path, "--vocab", tmp_path / "classes.txt")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "classes.txt"} == before
    demo("--input", image_dir, "--output", tmp_path, "--vocab", tmp_path / "classes.txt", "--overwrite")
    assert json.loads((tmp_path / "scene0.json").read_text())["vocabulary"] == ["cat", "dog"]


def test_bad_inputs(demo, image_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="input file not found: .*missing.png"):
        demo("--input", tmp_path / "missing.png", "--output", tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="no file matches the pattern"):
        demo("--input", str(tmp_path / "*.jpg"), "--output", tmp_path / "o")
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(OSError, match="cannot read image .*broken.png"):
        demo("--input", tmp_path / "broken.png", "--output", tmp_path / "o")
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(NotADirectoryError, match="--output .*taken is an existing file, but 3 input"):
        demo("--input", image_dir, "--output", tmp_path / "taken")
    with pytest.raises(ValueError, match="is one of the inputs"):
        demo("--input", image_dir / "scene0.png", "--output", image_dir / "scene0.png", "--overwrite")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(image_dir / "scene0.png", other / "scene0.png")
    with pytest.raises(ValueError, match="would write the same outputs"):
        demo("--input", image_dir / "scene0.png", other / "scene0.png", "--output", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_weights_of_another_architecture(demo, image_dir, tmp_path):
    weights = save_random_spnet(tmp_path / "run", {**TINY_MODEL_OPTS, **CLIP_OPTS}, None)
    with pytest.raises(IncompatibleCheckpointError, match="keys of another shape .*projection"):
        demo("--input", image_dir, "--output", tmp_path / "o", weights=weights)


def test_names_without_word_vectors(demo_module, spnet_weights, image_dir, tmp_path, caplog):
    (tmp_path / "v.txt").write_text("cat\nflibbertigibbet\nzorglub\n")
    argv = ["--config-file", CONFIG, "--weights", str(spnet_weights), "--input", str(image_dir), "--output",
            str(tmp_path / "o"), "--vocab", str(tmp_path / "v.txt"), "--opts", *flat(TINY_MODEL_OPTS)]
    with caplog.at_level(logging.ERROR):
        assert demo_module.main(argv) == 2
    assert "'flibbertigibbet', 'zorglub'" in caplog.text and "MODEL.CLASS_EMBED.PROVIDER clip" in caplog.text
    assert not (tmp_path / "o").exists()


def test_no_output_and_no_display(demo, image_dir, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="nowhere to show the result: .*Pass --output DIR"):
        demo("--input", image_dir)


def test_argument_errors(demo, demo_module, spnet_weights, image_dir, tmp_path):
    with pytest.raises(ValueError, match="exactly one of --input, --video-input or --webcam"):
        demo("--output", tmp_path)
    with pytest.raises(ValueError, match=r"--confidence-threshold must be in \[0, 1\]"):
        demo("--input", image_dir, "--output", tmp_path, "--confidence-threshold", 2)
    argv = ["--weights", str(spnet_weights), "--input", str(image_dir), "--output", str(tmp_path), "--opts",
            "MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST"]
    with pytest.raises(ValueError, match="KEY VALUE pairs, got 3 items"):
        demo_module.run(demo_module.get_parser().parse_args(argv))
