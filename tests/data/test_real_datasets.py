"""Registration of the real zero-shot benchmarks and the split files they read."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from zegcag.data.datasets.register_ade_full import register_all_ade_full
from zegcag.data.datasets.register_coco_stuff import register_all_coco_stuff
from zegcag.data.datasets.register_context import register_all_context
from zegcag.data.datasets.register_voc import register_all_voc
from zegcag.data.datasets.register_zs3_sem_seg import datasets_root

PACKAGE = Path(__file__).resolve().parents[2] / "zegcag"
SPLITS = PACKAGE / "data" / "splits"
VECTORS = PACKAGE / "embeddings" / "vectors"

# register function, prepare script, {split: (classes, seen, unseen, unseen names)}
BENCHMARKS = {
    "voc": (register_all_voc, "prepare_voc.py", {
        "voc": (20, 15, 5, ["potted plant", "sheep", "sofa", "train", "tv monitor"]),
        "voc_bg": (21, 16, 5, ["potted plant", "sheep", "sofa", "train", "tv monitor"]),
    }),
    "coco_stuff": (register_all_coco_stuff, "prepare_coco_stuff.py", {
        "coco_stuff_171": (171, 156, 15, None),
        "coco_stuff_182": (182, 167, 15, None),
    }),
    "context": (register_all_context, "prepare_context.py", {
        "context_59": (59, 55, 4, ["cat", "cow", "motorbike", "sofa"]),
        "context_33": (33, 29, 4, ["cat", "cow", "motorbike", "sofa"]),
    }),
    "ade_full": (register_all_ade_full, "prepare_ade_full.py", {"ade_full_847": (847, 572, 275, None)}),
}
COCO_UNSEEN = ["cow", "giraffe", "suitcase", "frisbee", "skateboard", "carrot", "scissors", "cardboard", "clouds",
               "grass", "playingfield", "river", "road", "tree", "wall-concrete"]
COCO_UNUSED_IDS = [11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90]


def split_json(name: str) -> dict:
    return json.loads((SPLITS / f"{name}.json").read_text())


def meta_json(folder: str) -> dict:
    return json.loads((VECTORS / folder / "meta.json").read_text())


@pytest.fixture
def register():
    """Call a register_all_<ds> under a unique name suffix; removes what it registered afterwards."""
    registered = []

    def _register(fn, root):
        names = fn(root, name_suffix=f"_test_{uuid.uuid4().hex[:8]}")
        registered.extend(names)
        return names

    yield _register
    for name in registered:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.mark.parametrize("dataset", list(BENCHMARKS))
def test_registered_metadata_matches_split_files(tmp_path, register, dataset):
    fn, _, splits = BENCHMARKS[dataset]
    names = register(fn, tmp_path)
    suffix = names[0].rsplit("_test_", 1)[1]
    assert names == [f"{s}_zs3_{p}_sem_seg_test_{suffix}" for s in splits for p in ("train", "val")]
    for split_name, (num, num_seen, num_unseen, unseen_names) in splits.items():
        spec = split_json(split_name)
        for phase in ("train", "val"):
            meta = MetadataCatalog.get(f"{split_name}_zs3_{phase}_sem_seg_test_{suffix}")
            assert meta.stuff_classes == spec["classes"] and len(meta.stuff_classes) == num
            assert meta.unseen_classes == sorted(spec["unseen"]) and len(meta.unseen_classes) == num_unseen
            assert meta.seen_classes == [i for i in range(num) if i not in spec["unseen"]]
            assert len(meta.seen_classes) == num_seen
            assert meta.ignore_label == spec["ignore_label"] and meta.evaluator_type == "gzs3_sem_seg"
            assert Path(meta.image_root) == tmp_path / f"zs3_{split_name}" / "images" / phase
            assert Path(meta.sem_seg_root) == tmp_path / f"zs3_{split_name}" / "labels" / phase
        if unseen_names is not None:
            assert sorted(spec["classes"][i] for i in spec["unseen"]) == sorted(unseen_names)


@pytest.mark.parametrize("dataset", list(BENCHMARKS))
def test_missing_dataset_names_path_and_prepare_script(tmp_path, monkeypatch, register, dataset):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    fn, script, splits = BENCHMARKS[dataset]
    names = register(fn, datasets_root())
    for name, split_name in zip(names[::2], splits):
        with pytest.raises(FileNotFoundError) as err:
            DatasetCatalog.get(name)
        message = str(err.value)
        assert str((tmp_path / f"zs3_{split_name}" / "images" / "train").resolve()) in message
        assert f"datasets/{script}" in message and f"--output-root {tmp_path}" in message


def test_voc_splits_agree_with_word_vector_rows():
    """voc_bg ids are the raw VOC ids, which index the shipped voc12 vectors."""
    meta = meta_json("voc12")
    bg = split_json("voc_bg")
    assert [n.replace(" ", "") for n in bg["classes"][1:]] == [n for _, n in meta["labels"][1:]]
    assert bg["unseen"] == meta["novel_cls"]
    assert split_json("voc")["classes"] == bg["classes"][1:]


def test_coco_stuff_splits():
    names182 = [n for _, n in meta_json("cocostuff")["labels_refined"]]
    s182, s171 = split_json("coco_stuff_182"), split_json("coco_stuff_171")
    assert s182["classes"] == names182 and s182["unseen"] == meta_json("cocostuff")["novel_cls"]
    assert s171["classes"] == [n for i, n in enumerate(names182) if i not in COCO_UNUSED_IDS]
    for spec in (s171, s182):
        assert [spec["classes"][i] for i in spec["unseen"]] == COCO_UNSEEN


def test_context_splits():
    s33, s59 = split_json("context_33"), split_json("context_59")
    meta = meta_json("context")
    assert [n.replace(" ", "") for n in s33["classes"]] == [n for _, n in meta["labels"]]
    assert sorted(i + 1 for i in s33["unseen"]) == sorted(meta["novel_cls"])  # their label 0 is "unlabeled"
    # the 59 classes in the standard order are sorted by their 459-class id; the 33 are a subset of them
    assert s59["dataset_ids"] == sorted(s59["dataset_ids"]) and len(set(s59["dataset_ids"])) == 59
    assert set(s33["dataset_ids"]) <= set(s59["dataset_ids"]) and len(set(s33["dataset_ids"])) == 33
    by_id = dict(zip(s59["dataset_ids"], s59["classes"]))
    renamed = {"dining table": "table"}
    assert [by_id[i] for i in s33["dataset_ids"]] == [renamed.get(n, n) for n in s33["classes"]]


def test_ade_full_frequency_split():
    spec = split_json("ade_full_847")
    counts = spec["train_image_counts"]
    assert len(spec["classes"]) == len(set(spec["classes"])) == len(counts) == len(set(spec["dataset_ids"])) == 847
    assert spec["unseen"] == [i for i, c in enumerate(counts) if c <= 10]
    assert sum(", " in n for n in spec["classes"]) == 217
    assert spec["classes"][:3] == ["wall", "building, edifice", "sky"] and spec["dataset_ids"][0] == 2978
    assert spec["ignore_label"] == 65535
