from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from zegcag.data.datasets.splits import load_split
from zegcag.embeddings import EMBEDDER_REGISTRY, ClassEmbedder, build_class_embedder
from zegcag.embeddings.word_vectors import (
    VECTORS_DIR,
    FastTextEmbedder,
    Word2VecEmbedder,
    Word2VecFastTextEmbedder,
)

# COCO-Stuff thing ids (1-based, as in meta.json "labels") that have no annotations.
COCO_UNUSED_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91}


def _meta(source: str) -> dict:
    return json.loads((VECTORS_DIR / source / "meta.json").read_text())


def _row(source: str, kind: str, row: int) -> torch.Tensor:
    """One shipped vector, L2-normalised, read straight from the .npy."""
    vector = torch.from_numpy(np.load(VECTORS_DIR / source / f"{kind}.npy")[row]).float()
    return vector / vector.norm()


@pytest.fixture(scope="module")
def w2v():
    return Word2VecEmbedder()


@pytest.mark.parametrize(
    "cls, dim", [(Word2VecEmbedder, 300), (FastTextEmbedder, 300), (Word2VecFastTextEmbedder, 600)]
)
def test_voc_vocabulary_shapes_and_unit_norms(cls, dim):
    names = load_split("voc").class_names
    embedder = cls()
    out = embedder(names)
    assert embedder.dim == dim
    assert out.shape == (20, dim) and out.dtype == torch.float32 and out.device.type == "cpu"
    torch.testing.assert_close(out.norm(dim=1), torch.ones(20))
    # distinct classes get distinct vectors
    assert (out @ out.T - torch.eye(20)).max() < 0.999


@pytest.mark.parametrize(
    "split, size",
    [("voc", 20), ("voc_bg", 21), ("context_33", 33), ("coco_stuff_171", 171), ("coco_stuff_182", 182),
     ("synthetic", 21)],
)
def test_every_benchmark_split_resolves(w2v, split, size):
    names = load_split(split).class_names
    assert len(names) == size
    out = w2v(names)
    assert out.shape == (size, 300)
    assert (out @ out.T - torch.eye(size)).max() < 0.999  # no two classes collapse onto one vector


def test_every_shipped_class_name_resolves(w2v):
    context = [name for _, name in _meta("context")["labels"]]
    coco = [name for index, name in _meta("cocostuff")["labels"] if index != 0 and index not in COCO_UNUSED_IDS]
    assert len(context) == 33 and len(coco) == 171
    assert w2v(context).shape == (33, 300)
    assert w2v(coco).shape == (171, 300)


def test_name_normalisation(w2v):
    spellings = [["tv monitor", "tvmonitor", "TV_Monitor", "tv-monitor"],
                 ["potted plant", "pottedplant", "potted_plant", "Potted-Plant", "  potted   plant "]]
    for forms in spellings:
        out = w2v(forms)
        for row in out[1:]:
            torch.testing.assert_close(row, out[0])


def test_row_conventions(w2v):
    # cocostuff: "labels" are one above the rows, "labels_refined" match them (wall-concrete is row 171)
    torch.testing.assert_close(w2v(["wall-concrete"])[0], _row("cocostuff", "word2vec", 171))
    torch.testing.assert_close(w2v(["wood"])[0], _row("cocostuff", "word2vec", 181))
    # context rows are not unit norm as shipped; "ceiling" exists only there (row 33)
    raw = np.load(VECTORS_DIR / "context" / "word2vec.npy")[33]
    assert not math.isclose(float(np.linalg.norm(raw)), 1.0, rel_tol=1e-2)
    torch.testing.assert_close(w2v(["ceiling"])[0], _row("context", "word2vec", 33))
    torch.testing.assert_close(w2v(["sheep"])[0], _row("voc12", "word2vec", 17))


def test_source_priority_decides_conflicting_names():
    default = Word2VecEmbedder()(["potted plant"])[0]
    coco_first = Word2VecEmbedder(sources=("cocostuff", "voc12"))(["potted plant"])[0]
    torch.testing.assert_close(default, _row("voc12", "word2vec", 16))
    torch.testing.assert_close(coco_first, _row("cocostuff", "word2vec", 63))
    assert float(default @ coco_first) < 0.9
    with pytest.raises(ValueError, match="ade"):
        Word2VecEmbedder(sources=("voc12", "ade"))


def test_concatenation_halves():
    names = ["cat", "sofa", "traffic light", "wall-brick"]
    both = Word2VecFastTextEmbedder()(names)
    halves = (both[:, :300] * math.sqrt(2), both[:, 300:] * math.sqrt(2))
    torch.testing.assert_close(halves[0], Word2VecEmbedder()(names))
    torch.testing.assert_close(halves[1], FastTextEmbedder()(names))


def test_synonyms_are_averaged_then_normalised(w2v):
    sofa, couch = w2v(["sofa", "couch"])
    merged = w2v(["sofa, couch"])[0]
    torch.testing.assert_close(merged, (sofa + couch) / (sofa + couch).norm())
    assert float(merged @ sofa) < 0.999 and float(merged @ couch) < 0.999


def test_missing_names_are_all_listed(w2v):
    with pytest.raises(KeyError) as info:
        w2v(["cat", "flux capacitor", "person, human", "zorblax"])
    message = str(info.value)
    for missing in ("flux capacitor", "human", "zorblax"):
        assert missing in message
    assert "'cat'" not in message
    assert "MODEL.CLASS_EMBED.PROVIDER clip" in message


def test_bad_vocabularies(w2v):
    with pytest.raises(ValueError, match=r"duplicate.*'cat'.*'dog'"):
        w2v(["cat", "dog", "cow", "dog", "cat"])
    with pytest.raises(ValueError, match="empty"):
        w2v([])
    with pytest.raises(ValueError, match="empty synonym"):
        w2v(["cat, "])
    with pytest.raises(TypeError, match="single string"):
        w2v("cat")


def test_results_are_copies_and_keys_follow_the_vocabulary(w2v):
    first = w2v(["cat", "dog"])
    first.zero_()
    assert w2v(["cat", "dog"]).norm(dim=1).min() > 0.99
    assert w2v.cache_key(["cat", "dog"]) == Word2VecEmbedder().cache_key(["cat", "dog"])
    assert w2v.cache_key(["cat", "dog"]) != w2v.cache_key(["dog", "cat"])
    assert w2v.cache_key(["cat", "dog"]) != FastTextEmbedder().cache_key(["cat", "dog"])


@pytest.mark.parametrize("provider, dim", [("word2vec", 300), ("fasttext", 300), ("w2v+ft", 600)])
def test_build_from_config(provider, dim):
    from detectron2.config import get_cfg

    from zegcag import add_zegcag_config

    cfg = get_cfg()
    add_zegcag_config(cfg)
    cfg.MODEL.CLASS_EMBED.PROVIDER = provider
    embedder = build_class_embedder(cfg)
    assert isinstance(embedder, ClassEmbedder) and embedder.provider == provider
    assert embedder(["cat"]).shape == (1, dim)


def test_unknown_provider_names_the_key_and_choices():
    from detectron2.config import get_cfg

    from zegcag import add_zegcag_config

    cfg = get_cfg()
    add_zegcag_config(cfg)
    cfg.MODEL.CLASS_EMBED.PROVIDER = "glove"
    with pytest.raises(ValueError, match="MODEL.CLASS_EMBED.PROVIDER") as info:
        build_class_embedder(cfg)
    for name, _ in EMBEDDER_REGISTRY:
        assert name in str(info.value)


def test_wrong_index_convention_is_detected(monkeypatch):
    from zegcag.embeddings import word_vectors

    monkeypatch.setattr(word_vectors, "_ROW_OFFSET", {})  # forget that cocostuff "labels" are shifted
    with pytest.raises(ValueError, match="cocostuff.*'person' is row 0 in labels_refined but row 1 in labels"):
        word_vectors._load_table.__wrapped__("word2vec", ("cocostuff",))
