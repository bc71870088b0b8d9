"""The synthetic benchmark generator: determinism, label ranges, appearance, on-disk safety, CLI."""
from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zegcag.data import synthetic
from zegcag.data.datasets.splits import load_split
from zegcag.data.synthetic import (
    SyntheticBenchmarkConfig,
    class_appearance,
    ensure_synthetic_benchmark,
    generate_benchmark,
    make_tiles,
    object_class_embeddings,
    render_scene,
    synthetic_folder_name,
)

REPO = Path(__file__).resolve().parents[2]
CLI = REPO / "datasets" / "prepare_synthetic.py"
TINY = SyntheticBenchmarkConfig(num_train=5, num_val=3, num_calib=2, image_size=32)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _appearance_and_tiles(cfg: SyntheticBenchmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    return class_appearance(object_class_embeddings(load_split(cfg.split_name)), cfg), make_tiles(cfg)


def test_folder_names():
    assert synthetic_folder_name(0) == "zs3_synthetic"
    assert synthetic_folder_name(3) == "zs3_synthetic_s3"
    assert synthetic_folder_name(0, "synthetic_coco") == "zs3_synthetic_coco"
    with pytest.raises(ValueError, match="unknown synthetic class set 'voc'"):
        synthetic_folder_name(0, "voc")


def test_coco_class_set_uses_the_models_embeddings_and_all_172_labels(tmp_path):
    from zegcag.embeddings.word_vectors import Word2VecFastTextEmbedder

    split = load_split("synthetic_coco")
    assert split.num_classes == 172 and len(split.unseen) == 15 and 0 not in split.unseen
    emb = object_class_embeddings(split)
    model_emb = Word2VecFastTextEmbedder()(list(split.class_names))
    assert emb.shape == (171, 600) and np.allclose(emb, model_emb[1:].double().numpy(), atol=1e-6)
    cfg = dataclasses.replace(TINY, split_name="synthetic_coco", num_train=20)
    folder = generate_benchmark(tmp_path, cfg)
    assert folder.name == "zs3_synthetic_coco"
    labels = np.concatenate([np.asarray(Image.open(p)).ravel() for p in sorted((folder / "labels/train").glob("*.png"))])
    assert labels.max() < 172 and len(np.unique(labels)) > 21  # object ids beyond the VOC range occur
    assert json.loads((folder / "meta.json").read_text())["classes"] == list(split.class_names)


def test_same_config_gives_byte_identical_files(tmp_path):
    a = _files(generate_benchmark(tmp_path / "a", TINY))
    b = _files(generate_benchmark(tmp_path / "b", TINY))
    assert len(a) == 2 * (5 + 3 + 2) + 1
    assert a == b
    c = _files(generate_benchmark(tmp_path / "c", dataclasses.replace(TINY, seed=1)))
    assert {k: v for k, v in c.items() if k.endswith(".png")} != {k: v for k, v in a.items() if k.endswith(".png")}


def test_layout_formats_and_label_range(tmp_path):
    folder = generate_benchmark(tmp_path, TINY)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["config"] == TINY.to_json()
    assert meta["classes"] == list(load_split("synthetic").class_names)
    assert meta["counts"] == {"train": 5, "val": 3, "calib": 2}
    for subset, count in TINY.counts().items():
        images = sorted((folder / "images" / subset).glob("*.png"))
        labels = sorted((folder / "labels" / subset).glob("*.png"))
        assert [p.name for p in images] == [f"{i:05d}.png" for i in range(count)] == [p.name for p in labels]
        for image_path, label_path in zip(images, labels):
            image, label = Image.open(image_path), Image.open(label_path)
            assert image.mode == "RGB" and image.size == (32, 32)
            assert label.mode == "L" and label.size == (32, 32)
            ids = np.unique(np.asarray(label))
            assert ids.min() >= 0 and ids.max() <= 20 and 0 in ids and ids.max() > 0


def test_object_and_background_proportions():
    cfg = SyntheticBenchmarkConfig()
    appearance, tiles = _appearance_and_tiles(cfg)
    labels = np.stack([render_scene(np.random.default_rng(i), appearance, tiles, cfg)[1] for i in range(300)])
    counts = np.bincount(labels.ravel(), minlength=21)
    assert counts.size == 21  # nothing outside 0..20, no ignore pixels
    bg = counts[0] / counts.sum()
    assert 0.6 < bg < 0.85, bg
    assert all((lab > 0).any() for lab in labels)
    obj = counts[1:]
    assert obj.min() > 0 and obj.max() / obj.min() < 2.5, obj  # classes drawn uniformly


def test_generator_has_no_unseen_input():
    fields = {f.name for f in dataclasses.fields(SyntheticBenchmarkConfig)}
    assert not any("unseen" in name or "seen" in name for name in fields)
    for fn in (class_appearance, make_tiles, render_scene, generate_benchmark, ensure_synthetic_benchmark):
        assert not any("seen" in p for p in inspect.signature(fn).parameters), fn.__name__


def test_files_do_not_depend_on_the_unseen_list(tmp_path, monkeypatch):
    reference = _files(generate_benchmark(tmp_path / "a", TINY))
    other = load_split("synthetic").with_unseen(["bicycle", "bottle", "cat", "dining table", "horse"])
    monkeypatch.setattr(synthetic, "load_split", lambda name: other)
    assert _files(generate_benchmark(tmp_path / "b", TINY)) == reference


def test_appearance_is_zscored_and_follows_the_embedding():
    cfg = SyntheticBenchmarkConfig()
    emb = object_class_embeddings(load_split("synthetic"))
    assert emb.shape == (20, 600)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)
    app = class_appearance(emb, cfg)
    assert app.shape == (20, cfg.k)
    np.testing.assert_allclose(app.mean(0), 0.0, atol=1e-9)
    np.testing.assert_allclose(app.std(0), 1.0, rtol=1e-9)
    perm = np.random.default_rng(0).permutation(20)
    np.testing.assert_allclose(class_appearance(emb[perm], cfg), app[perm], atol=1e-9)
    other = class_appearance(emb, dataclasses.replace(cfg, appearance_seed=1))
    assert not np.allclose(other, app)
    tiles = make_tiles(cfg)
    assert tiles.shape == (cfg.k, 3, cfg.tile_size, cfg.tile_size)
    np.testing.assert_allclose(np.sqrt((tiles**2).mean(axis=(1, 2, 3))), 1.0, rtol=1e-9)


def test_same_class_renders_its_own_texture():
    """Without instance noise or photometric jitter, every object pixel is a pixel of its class tile."""
    cfg = SyntheticBenchmarkConfig(
        instance_noise=0.0, brightness_range=(1.0, 1.0), bias_range=(0.0, 0.0), pixel_noise=0.0
    )
    appearance, tiles = _appearance_and_tiles(cfg)
    k = cfg.k
    class_colours = {}
    for c in range(20):
        tile = cfg.texture_mean + cfg.texture_amplitude / np.sqrt(k) * np.tensordot(appearance[c], tiles, 1)
        rgb = np.round(np.clip(tile, 0, 1) * 255).astype(np.uint8).reshape(3, -1).T
        class_colours[c + 1] = {tuple(v) for v in rgb}
    seen_classes = set()
    for i in range(30):
        image, label = render_scene(np.random.default_rng(i), appearance, tiles, cfg)
        for c in np.unique(label[label > 0]):
            pixels = {tuple(v) for v in image[label == c]}
            assert pixels <= class_colours[int(c)], f"class {c} in scene {i}"
            seen_classes.add(int(c))
    assert len(seen_classes) >= 15
    assert class_colours[1] != class_colours[2]


def test_existing_folder_is_skipped(tmp_path, caplog):
    folder = generate_benchmark(tmp_path, TINY)
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")}
    with caplog.at_level(logging.INFO, logger="zegcag.data.synthetic"):
        assert generate_benchmark(tmp_path, TINY) == folder
    assert "already generated" in caplog.text
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*.png")} == stamp


def test_refuses_to_overwrite_another_config(tmp_path):
    folder = generate_benchmark(tmp_path, TINY)
    bigger = dataclasses.replace(TINY, num_train=6)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_benchmark(tmp_path, bigger)
    assert len(list((folder / "images" / "train").glob("*.png"))) == 5
    generate_benchmark(tmp_path, bigger, overwrite=True)
    assert len(list((folder / "images" / "train").glob("*.png"))) == 6
    assert json.loads((folder / "meta.json").read_text())["config"]["num_train"] == 6
    assert not list(tmp_path.glob(".*tmp*"))


def test_refuses_folder_without_meta(tmp_path):
    user_file = tmp_path / "zs3_synthetic" / "mine.txt"
    user_file.parent.mkdir()
    user_file.write_text("user data")
    with pytest.raises(FileExistsError, match="no meta.json"):
        generate_benchmark(tmp_path, TINY)
    assert user_file.read_text() == "user data"


def test_ensure_uses_datasets_root_and_defaults(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    monkeypatch.setattr(synthetic, "generate_benchmark", lambda root, cfg: calls.append((root, cfg)) or root)
    ensure_synthetic_benchmark(seed=2)
    assert calls == [(tmp_path, SyntheticBenchmarkConfig(seed=2))]


def test_invalid_config_names_the_field():
    with pytest.raises(ValueError, match="min_objects"):
        SyntheticBenchmarkConfig(min_objects=5, max_objects=2)


def _load_cli():
    spec = importlib.util.spec_from_file_location("prepare_synthetic", CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_help_and_tiny_run(tmp_path):
    helped = subprocess.run([sys.executable, str(CLI), "--help"], capture_output=True, text=True, check=True)
    assert "--output-root" in helped.stdout and "--overwrite" in helped.stdout
    args = ["--output-root", str(tmp_path), "--seed", "1", "--num-train", "3", "--num-val", "2", "--num-calib", "1"]
    args += ["--image-size", "16"]
    run = subprocess.run([sys.executable, str(CLI), *args], capture_output=True, text=True, check=True, cwd=REPO)
    folder = tmp_path / "zs3_synthetic_s1"
    assert str(folder.resolve()) in run.stdout
    assert len(list((folder / "labels" / "train").glob("*.png"))) == 3
    assert json.loads((folder / "meta.json").read_text())["config"]["image_size"] == 16


def test_cli_refuses_another_config(tmp_path, capsys):
    cli = _load_cli()
    small = ["--output-root", str(tmp_path), "--num-train", "2", "--num-val", "1", "--num-calib", "1"]
    assert cli.main([*small, "--image-size", "16"]) == 0
    assert cli.main([*small, "--image-size", "24"]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert cli.main([*small, "--image-size", "24", "--overwrite"]) == 0
    meta = json.loads((tmp_path / "zs3_synthetic" / "meta.json").read_text())
    assert meta["config"]["image_size"] == 24
