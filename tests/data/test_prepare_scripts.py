"""datasets/prepare_<ds>.py on tiny fake downloads in the official formats, run as scripts."""
from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

REPO = Path(__file__).resolve().parents[2]
SPLITS = REPO / "zegcag" / "data" / "splits"
SCRIPTS = ("prepare_voc.py", "prepare_coco_stuff.py", "prepare_context.py", "prepare_ade_full.py")


def run_script(script: str, *args: object) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(REPO / "datasets" / script), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)


def split_json(name: str) -> dict:
    return json.loads((SPLITS / f"{name}.json").read_text())


def class_id(split: str, name: str) -> int:
    return split_json(split)["classes"].index(name)


def write_jpg(path: Path, height: int = 6, width: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def write_png(path: Path, values: np.ndarray, mode: str = "L") -> None:
    """Label PNG: grayscale, or palette (``P``) like the official VOC SegmentationClass files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(values.astype(np.uint8), mode="L")
    if mode == "P":
        img = img.convert("P")
        img.putpalette(list(np.random.default_rng(1).integers(0, 255, 768, dtype=np.uint8)))
    img.save(path)


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def grid(values: list[int], dtype=np.int64) -> np.ndarray:
    """(6, 8) label whose first len(values) pixels of row 0 hold ``values``, the rest values[0]."""
    out = np.full((6, 8), values[0], dtype=dtype)
    out[0, : len(values)] = values
    return out


# ---------------------------------------------------------------- VOC
VOC_RAW = [0, 1, 15, 16, 20, 255]  # background, aeroplane, person, potted plant (unseen), tv monitor (unseen), boundary


def fake_voc(root: Path) -> Path:
    raw = root / "VOC2012"
    for stem in ("a", "b", "c"):
        write_jpg(raw / "JPEGImages" / f"{stem}.jpg")
    write_png(raw / "SegmentationClassAug" / "a.png", grid(VOC_RAW))
    write_png(raw / "SegmentationClassAug" / "b.png", grid([0, 3]))
    write_png(raw / "SegmentationClass" / "c.png", grid(VOC_RAW), mode="P")
    sets = raw / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "train_aug.txt").write_text("a\nb\n")
    (sets / "val.txt").write_text("c\n")
    return raw


def test_help_exits_zero():
    for script in SCRIPTS:
        result = run_script(script, "--help")
        assert result.returncode == 0, result.stderr
        assert "--raw-dir" in result.stdout and "--output-root" in result.stdout


def test_voc_labels_seen_only_and_overwrite(tmp_path):
    raw, out = fake_voc(tmp_path), tmp_path / "out"
    result = run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out, "--write-seen-only")
    assert result.returncode == 0, result.stderr
    folder = out / "zs3_voc"
    expected = [255, 0, class_id("voc", "person"), class_id("voc", "potted plant"), class_id("voc", "tv monitor"), 255]
    for phase, stem in (("train", "a"), ("val", "c")):  # val labels come from the palette PNGs
        label = read_png(folder / "labels" / phase / f"{stem}.png")
        assert label[0, :6].tolist() == expected
        seen = read_png(folder / "labels_seen" / phase / f"{stem}.png")
        assert seen[0, :6].tolist() == [255, 0, class_id("voc", "person"), 255, 255, 255]
    assert sorted(p.name for p in (folder / "images" / "train").iterdir()) == ["a.jpg", "b.jpg"]
    assert (folder / "images" / "val" / "c.jpg").resolve() == (raw / "JPEGImages" / "c.jpg").resolve()
    assert json.loads((folder / "prepare_info.json").read_text())["num_images"] == {"train": 2, "val": 1}

    marker = folder / "labels" / "train" / "a.png"
    marker.write_bytes(b"user data")
    again = run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out)
    assert again.returncode == 1
    assert str(folder) in again.stderr and "--overwrite" in again.stderr
    assert marker.read_bytes() == b"user data"
    forced = run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out, "--overwrite", "--copy-images")
    assert forced.returncode == 0, forced.stderr
    assert read_png(marker)[0, :6].tolist() == expected
    assert not (folder / "labels_seen").exists() and not (folder / "images" / "val" / "c.jpg").is_symlink()


def test_voc_background_variant(tmp_path):
    raw, out = fake_voc(tmp_path), tmp_path / "out"
    result = run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out, "--background")
    assert result.returncode == 0, result.stderr
    label = read_png(out / "zs3_voc_bg" / "labels" / "train" / "a.png")
    assert label[0, :6].tolist() == [0, 1, 15, 16, 20, 255]  # voc_bg ids are the raw VOC ids


def test_voc_input_errors(tmp_path):
    missing = run_script("prepare_voc.py", "--raw-dir", tmp_path / "nope", "--output-root", tmp_path / "out")
    assert missing.returncode == 1 and str(tmp_path / "nope") in missing.stderr and "VOC2012" in missing.stderr
    raw = fake_voc(tmp_path)
    (raw / "SegmentationClassAug" / "b.png").unlink()
    result = run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", tmp_path / "out")
    assert result.returncode == 1 and "b.png" in result.stderr
    assert not (tmp_path / "out" / "zs3_voc").exists()


def test_voc_failure_midway_keeps_previous_output(tmp_path):
    raw, out = fake_voc(tmp_path), tmp_path / "out"
    assert run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out).returncode == 0
    before = read_png(out / "zs3_voc" / "labels" / "train" / "a.png")
    Image.new("RGB", (8, 6)).save(raw / "SegmentationClass" / "c.png")  # a colour label, found while converting
    result = run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out, "--overwrite")
    assert result.returncode == 1 and "c.png" in result.stderr and "RGB" in result.stderr
    assert (read_png(out / "zs3_voc" / "labels" / "train" / "a.png") == before).all()
    assert (out / "zs3_voc.incomplete").exists()
    write_png(raw / "SegmentationClass" / "c.png", grid([0, 2]), mode="P")
    assert run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out, "--overwrite").returncode == 0
    assert read_png(out / "zs3_voc" / "labels" / "val" / "c.png")[0, :2].tolist() == [255, 1]
    assert not (out / "zs3_voc.incomplete").exists()


# ---------------------------------------------------------------- COCO-Stuff
COCO_RAW = [0, 11, 20, 181, 255]  # person, unused id 11 (street sign), cow (unseen), wood, unlabeled


def fake_coco(root: Path) -> Path:
    raw = root / "coco"
    for phase, stem in (("train2017", "000000000001"), ("val2017", "000000000002")):
        write_jpg(raw / phase / f"{stem}.jpg")
        write_png(raw / "stuffthingmaps_trainval2017" / phase / f"{stem}.png", grid(COCO_RAW))
    return raw


@pytest.mark.parametrize("variant", ["171", "182"])
def test_coco_stuff_variants(tmp_path, variant):
    raw, out = fake_coco(tmp_path), tmp_path / "out"
    result = run_script("prepare_coco_stuff.py", "--raw-dir", raw, "--output-root", out, "--variant", variant,
                        "--write-seen-only")
    assert result.returncode == 0, result.stderr
    folder = out / f"zs3_coco_stuff_{variant}"
    label = read_png(folder / "labels" / "val" / "000000000002.png")[0, :5].tolist()
    seen = read_png(folder / "labels_seen" / "train" / "000000000001.png")[0, :5].tolist()
    split = f"coco_stuff_{variant}"
    if variant == "171":
        assert label == [0, 255, class_id(split, "cow"), 170, 255]
        assert seen == [0, 255, 255, 170, 255]
    else:
        assert label == COCO_RAW
        assert seen == [0, 11, 255, 181, 255]


def test_coco_stuff_missing_labels(tmp_path):
    raw = fake_coco(tmp_path)
    (raw / "stuffthingmaps_trainval2017").rename(raw / "other")
    result = run_script("prepare_coco_stuff.py", "--raw-dir", raw, "--output-root", tmp_path / "out")
    assert result.returncode == 1 and "stuffthingmaps" in result.stderr


# ---------------------------------------------------------------- PASCAL-Context
# 459-class ids of the original release: 0 unlabeled, 2 aeroplane, 9 bag, 65 cat, 397 table, 459 (outside both lists)
CONTEXT_RAW = [0, 2, 9, 65, 397, 459]


def fake_context(root: Path, fmt: str) -> Path:
    raw = root / "VOC2010"
    for phase, stem in (("train", "2008_000001"), ("val", "2008_000002")):
        write_jpg(raw / "JPEGImages" / f"{stem}.jpg")
        (raw / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (raw / "ImageSets" / "Main" / f"{phase}.txt").write_text(f"{stem}\n")
        if fmt == "mat":
            (raw / "trainval").mkdir(exist_ok=True)
            savemat(raw / "trainval" / f"{stem}.mat", {"LabelMap": grid(CONTEXT_RAW, np.uint16)})
        else:  # 59-class PNG: 0 background, k = k-th class of context_59
            ids59 = split_json("context_59")["dataset_ids"]
            values = [0] + [ids59.index(v) + 1 for v in CONTEXT_RAW[1:5]]
            write_png(raw / "SegmentationClassContext" / f"{stem}.png", grid(values))
    return raw


@pytest.mark.parametrize("fmt", ["mat", "png59"])
@pytest.mark.parametrize("classes", ["33", "59"])
def test_context_label_sources(tmp_path, fmt, classes):
    raw, out = fake_context(tmp_path, fmt), tmp_path / "out"
    result = run_script("prepare_context.py", "--raw-dir", raw, "--output-root", out, "--classes", classes,
                        "--write-seen-only")
    assert result.returncode == 0, result.stderr
    split = f"context_{classes}"
    label = read_png(out / f"zs3_{split}" / "labels" / "train" / "2008_000001.png")[0, :6].tolist()
    seen = read_png(out / f"zs3_{split}" / "labels_seen" / "val" / "2008_000002.png")[0, :6].tolist()
    cat = class_id(split, "cat")
    if classes == "59":
        expected = [255, class_id(split, "aeroplane"), class_id(split, "bag"), cat, class_id(split, "table"), 255]
    else:  # bag is not among the 33 classes; table is their "dining table"
        expected = [255, class_id(split, "aeroplane"), 255, cat, class_id(split, "dining table"), 255]
    if fmt == "png59":
        expected[5] = expected[0]  # the PNG has no slot for ids outside the 59 classes
    assert label == expected
    assert seen == [255 if v == cat else v for v in expected]


def test_context_without_labels(tmp_path):
    raw = fake_context(tmp_path, "mat")
    (raw / "trainval").rename(raw / "elsewhere")
    result = run_script("prepare_context.py", "--raw-dir", raw, "--output-root", tmp_path / "out")
    assert result.returncode == 1
    assert "trainval" in result.stderr and "SegmentationClassContext" in result.stderr


# ---------------------------------------------------------------- ADE20K-Full
def ade_seg_rgb(classes: np.ndarray) -> np.ndarray:
    """(H, W, 3) *_seg.png colours whose class (R / 10) * 256 + G is ``classes``."""
    rgb = np.zeros((*classes.shape, 3), dtype=np.uint8)
    rgb[..., 0] = classes // 256 * 10
    rgb[..., 1] = classes % 256
    rgb[..., 2] = 7  # instance channel, ignored
    return rgb


def fake_ade(root: Path, ids: list[int]) -> Path:
    raw = root / "ADE20K_2021_17_01"
    for sub, stem in (("training", "ADE_train_00000001"), ("validation", "ADE_val_00000001")):
        folder = raw / "images" / "ADE" / sub / "cultural" / "apse_indoor"
        write_jpg(folder / f"{stem}.jpg", 8, 12)
        classes = np.full((8, 12), ids[0], dtype=np.int64)
        classes[:, 6:] = ids[1]  # left half ids[0], right half ids[1]: survives nearest resizing
        classes[0, 0] = ids[2]
        Image.fromarray(ade_seg_rgb(classes)).save(folder / f"{stem}_seg.png")
    return raw


def test_ade_full_uint16_labels_and_resize(tmp_path):
    spec = split_json("ade_full_847")
    wall, rare = spec["classes"].index("wall"), spec["unseen"][-1]
    ids = [spec["dataset_ids"][wall], spec["dataset_ids"][rare], 0]  # 0: unlabeled
    raw, out = fake_ade(tmp_path, ids), tmp_path / "out"
    result = run_script("prepare_ade_full.py", "--raw-dir", raw, "--output-root", out, "--max-short-side", "4",
                        "--write-seen-only")
    assert result.returncode == 0, result.stderr
    folder = out / "zs3_ade_full_847"
    label = read_png(folder / "labels" / "val" / "ADE_val_00000001.png")
    assert label.dtype == np.uint16 and label.shape == (4, 6)
    assert (label[:, 3:] == rare).all()
    assert label[0, 0] == 65535 and (label[1:, :3] == wall).all()  # the unlabeled corner pixel is kept
    seen = read_png(folder / "labels_seen" / "train" / "ADE_train_00000001.png")
    assert (seen[1:, :3] == wall).all() and (seen[:, 3:] == 65535).all()  # rare = unseen -> ignore
    with Image.open(folder / "images" / "train" / "ADE_train_00000001.jpg") as img:
        assert img.size == (6, 4)
    counts = json.loads((folder / "prepare_info.json").read_text())["train_image_counts"]
    assert counts[wall] == 1 and counts[rare] == 1 and sum(counts) == 2


def test_ade_full_keeps_small_images(tmp_path):
    spec = split_json("ade_full_847")
    raw, out = fake_ade(tmp_path, [spec["dataset_ids"][0], spec["dataset_ids"][1], 5000]), tmp_path / "out"
    result = run_script("prepare_ade_full.py", "--raw-dir", raw, "--output-root", out)
    assert result.returncode == 0, result.stderr
    label = read_png(out / "zs3_ade_full_847" / "labels" / "train" / "ADE_train_00000001.png")
    assert label.shape == (8, 12) and label[0, 0] == 65535  # 5000 is no ADE id: unlabeled
    assert (out / "zs3_ade_full_847" / "images" / "train" / "ADE_train_00000001.jpg").is_symlink()


# ---------------------------------------------------------------- prepared folder -> registered dataset
def test_prepared_voc_loads_through_the_catalog(tmp_path):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from zegcag.data.datasets.register_voc import register_all_voc
    from zegcag.data.label_io import read_label

    raw, out = fake_voc(tmp_path), tmp_path / "out"
    assert run_script("prepare_voc.py", "--raw-dir", raw, "--output-root", out).returncode == 0
    names = register_all_voc(out, name_suffix=f"_test_{uuid.uuid4().hex[:8]}")
    try:
        dicts = DatasetCatalog.get(names[1])  # voc val
        assert [d["image_id"] for d in dicts] == ["c"]
        assert read_label(dicts[0]["sem_seg_file_name"])[0, 3] == MetadataCatalog.get(names[1]).stuff_classes.index(
            "potted plant"
        )
        assert len(DatasetCatalog.get(names[0])) == 2
    finally:
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
