from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from zegcag.embeddings import clip_text
from zegcag.embeddings.cache import EmbeddingCache, make_cache_key, resolve_cache_dir
from zegcag.embeddings.clip_text import ClipTextEmbedder

TINY_CLIP_JSON = Path(__file__).resolve().parent.parent / "fixtures" / "tiny_clip.json"
NAMES = ["cat", "dog, puppy", "potted plant"]


def tiny_embedder(pretrained, cache_dir, **kwargs) -> ClipTextEmbedder:
    return ClipTextEmbedder(model_name=TINY_CLIP_JSON.stem, pretrained=str(pretrained),
                            model_config=str(TINY_CLIP_JSON), cache_dir=str(cache_dir), **kwargs)


def test_memory_and_disk_round_trip(tmp_path):
    value = torch.randn(3, 5)
    cache = EmbeddingCache(tmp_path / "sub")
    assert cache.get("k") is None
    cache.put("k", value)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["k.npy"]  # no temporary files left
    got = cache.get("k")
    got.zero_()  # callers get copies
    torch.testing.assert_close(cache.get("k"), value)
    fresh = EmbeddingCache(tmp_path / "sub")
    torch.testing.assert_close(fresh.get("k", expected_shape=(3, 5)), value)
    assert EmbeddingCache(tmp_path / "sub").get("k", expected_shape=(4, 5)) is None
    memory_only = EmbeddingCache(None)
    memory_only.put("k", value)
    torch.testing.assert_close(memory_only.get("k"), value)


def test_unreadable_entries_are_misses_and_unwritable_dirs_are_not_fatal(tmp_path):
    (tmp_path / "bad.npy").write_bytes(b"not an npy file")
    assert EmbeddingCache(tmp_path).get("bad") is None
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    cache = EmbeddingCache(blocker / "cache")  # its parent is a file: mkdir fails
    cache.put("k", torch.ones(2, 2))
    torch.testing.assert_close(cache.get("k"), torch.ones(2, 2))


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("ZEGCAG_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert resolve_cache_dir("") == tmp_path / "env"
    monkeypatch.delenv("ZEGCAG_CACHE")
    assert resolve_cache_dir("") == Path("~/.cache/zegcag/embeddings").expanduser()


def test_make_cache_key_is_canonical():
    assert make_cache_key({"a": 1, "b": [1, 2]}) == make_cache_key({"b": [1, 2], "a": 1})
    assert make_cache_key({"a": 1, "b": [1, 2]}) != make_cache_key({"a": 1, "b": [2, 1]})


def test_clip_cache_key_changes_with_each_ingredient(tiny_checkpoint, tmp_path):
    base = tiny_embedder(tiny_checkpoint, tmp_path)
    key = base.cache_key(NAMES)
    assert key == tiny_embedder(tiny_checkpoint, tmp_path).cache_key(NAMES)
    assert key != base.cache_key(NAMES[::-1])
    assert key != base.cache_key(NAMES[:2])
    assert key != tiny_embedder(tiny_checkpoint, tmp_path, templates="imagenet_select").cache_key(NAMES)
    other_weights = tmp_path / "copy.pt"
    other_weights.write_bytes(tiny_checkpoint.read_bytes())
    assert key != tiny_embedder(other_weights, tmp_path).cache_key(NAMES)
    other_arch = tmp_path / "tiny_clip_twin.json"  # the same architecture under another model name
    other_arch.write_text(TINY_CLIP_JSON.read_text())
    twin = ClipTextEmbedder(model_name="tiny_clip_twin", pretrained=str(tiny_checkpoint),
                            model_config=str(other_arch), cache_dir=str(tmp_path))
    assert key != twin.cache_key(NAMES)


def test_disk_cache_serves_a_new_process_without_the_model(tiny_checkpoint, tmp_path, monkeypatch):
    first = tiny_embedder(tiny_checkpoint, tmp_path)(NAMES)
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1 and files[0].name.startswith("clip-")
    np.testing.assert_array_equal(np.load(files[0]), first.numpy())

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be built on a cache hit")

    monkeypatch.setattr(clip_text, "load_open_clip", no_model)
    torch.testing.assert_close(tiny_embedder(tiny_checkpoint, tmp_path)(NAMES), first, rtol=0, atol=0)
    with pytest.raises(AssertionError, match="must not be built"):
        tiny_embedder(tiny_checkpoint, tmp_path)(NAMES[:2])


def test_changed_checkpoint_file_is_not_served_from_cache(tiny_checkpoint, tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(tiny_checkpoint.read_bytes())
    cache_dir = tmp_path / "cache"
    before = tiny_embedder(weights, cache_dir)(NAMES)
    state = torch.load(weights)
    state["text_projection"] = state["text_projection"].flip(1)
    torch.save(state, weights)
    os.utime(weights, ns=(1, 1))  # make sure the mtime differs too
    after = tiny_embedder(weights, cache_dir)(NAMES)
    assert len(list(cache_dir.glob("*.npy"))) == 2
    torch.testing.assert_close(after, before.flip(1))


def test_random_init_is_never_written_to_disk(tmp_path):
    embedder = tiny_embedder("", tmp_path)
    embedder(NAMES)
    assert list(tmp_path.iterdir()) == []
