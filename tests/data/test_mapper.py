"""ZS3SemanticDatasetMapper: zero-shot relabelling, augmentation, bad inputs; the 'drop' policy."""
from __future__ import annotations

import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from PIL import Image

from zegcag.data.label_io import read_label
from zegcag.data.mappers import ZS3SemanticDatasetMapper
from zegcag.data.protocol import drop_images_with_classes, resolve_split
from zegcag_testing import TEST_DATASET, TINY_SPNET_OPTS, make_cfg


@pytest.fixture
def train_dicts(tiny_benchmark):
    return DatasetCatalog.get(f"{TEST_DATASET}_train")


def test_unseen_pixels_become_ignore(train_dicts):
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "INPUT.RANDOM_FLIP", "none")
    split = resolve_split(cfg, cfg.DATASETS.TRAIN[0])
    mapper = ZS3SemanticDatasetMapper(cfg, is_train=True)
    found_unseen = False
    for d in train_dicts:
        raw = read_label(d["sem_seg_file_name"])
        out = mapper(d)["sem_seg"].numpy()
        unseen = np.isin(raw, split.unseen)
        found_unseen |= unseen.any()
        assert (out[unseen] == split.ignore_label).all()
        assert (out[~unseen] == raw[~unseen]).all()
    assert found_unseen, "the fixture should contain unseen pixels"


def test_unseen_list_from_config(train_dicts):
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "INPUT.RANDOM_FLIP", "none",
                   "DATASETS.ZS3.UNSEEN_CLASSES", "['cat', 'horse']")
    split = resolve_split(cfg, cfg.DATASETS.TRAIN[0])
    assert [split.class_names[i] for i in split.unseen] == ["cat", "horse"]
    mapper = ZS3SemanticDatasetMapper(cfg, is_train=True)
    for d in train_dicts:
        raw, out = read_label(d["sem_seg_file_name"]), mapper(d)["sem_seg"].numpy()
        assert (out[np.isin(raw, split.unseen)] == 255).all()
        assert (out[raw == split.class_names.index("sheep")] == split.class_names.index("sheep")).all()


def test_unknown_unseen_name_is_a_clear_error(tiny_benchmark):
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "DATASETS.ZS3.UNSEEN_CLASSES", "['unicorn']")
    with pytest.raises(ValueError, match="DATASETS.ZS3.UNSEEN_CLASSES.*unicorn"):
        resolve_split(cfg, cfg.DATASETS.TRAIN[0])


def test_flip_moves_image_and_label_together(train_dicts):
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS, "INPUT.RANDOM_FLIP", "horizontal")
    mapper = ZS3SemanticDatasetMapper(cfg, is_train=True)
    plain = ZS3SemanticDatasetMapper(make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS,
                                              "INPUT.RANDOM_FLIP", "none"), is_train=True)
    d = train_dicts[0]
    ref = plain(d)
    outcomes = set()
    for _ in range(20):
        out = mapper(d)
        flipped = not np.array_equal(out["image"].numpy(), ref["image"].numpy())
        expected_label = ref["sem_seg"].flip(-1) if flipped else ref["sem_seg"]
        expected_image = ref["image"].flip(-1) if flipped else ref["image"]
        assert (out["sem_seg"] == expected_label).all() and (out["image"] == expected_image).all()
        outcomes.add(flipped)
    assert outcomes == {True, False}


def test_test_mode_keeps_label_on_disk(tiny_benchmark):
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS)
    d = DatasetCatalog.get(f"{TEST_DATASET}_val")[0]
    out = ZS3SemanticDatasetMapper(cfg, is_train=False)(d)
    assert "sem_seg" not in out and out["sem_seg_file_name"] == d["sem_seg_file_name"]
    assert tuple(out["image"].shape) == (3, out["height"], out["width"])


def test_label_with_unknown_id_names_file_and_id(train_dicts, tmp_path):
    label = read_label(train_dicts[0]["sem_seg_file_name"]).astype(np.uint8)
    label[0, 0] = 50
    bad = tmp_path / "bad.png"
    Image.fromarray(label).save(bad)
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS)
    mapper = ZS3SemanticDatasetMapper(cfg, is_train=True)
    with pytest.raises(ValueError, match=r"bad\.png.*\[50\]"):
        mapper({**train_dicts[0], "sem_seg_file_name": str(bad)})


def test_unreadable_image_names_file(train_dicts, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    cfg = make_cfg("configs/spnet_synthetic.yaml", *TINY_SPNET_OPTS)
    mapper = ZS3SemanticDatasetMapper(cfg, is_train=True)
    with pytest.raises(OSError, match="broken.png"):
        mapper({**train_dicts[0], "file_name": str(broken)})


def test_drop_policy_keeps_only_images_without_unseen(train_dicts):
    unseen = [16, 17, 18, 19, 20]
    kept = drop_images_with_classes(train_dicts, unseen)
    assert 0 < len(kept) < len(train_dicts)
    for d in train_dicts:
        has_unseen = np.isin(read_label(d["sem_seg_file_name"]), unseen).any()
        assert (d in kept) != has_unseen
