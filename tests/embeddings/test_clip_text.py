from __future__ import annotations

import time
from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F

from zegcag.embeddings import build_class_embedder, load_open_clip
from zegcag.embeddings.clip_text import ClipTextEmbedder

TINY_CLIP_JSON = Path(__file__).resolve().parent.parent / "fixtures" / "tiny_clip.json"
TINY_CLIP = TINY_CLIP_JSON.stem


def tiny_embedder(pretrained="", **kwargs) -> ClipTextEmbedder:
    kwargs.setdefault("cache_dir", None)
    return ClipTextEmbedder(model_name=TINY_CLIP, pretrained=str(pretrained), model_config=str(TINY_CLIP_JSON),
                            **kwargs)


@pytest.fixture
def encode_calls(monkeypatch):
    """Counts texts passed through CLIP.encode_text."""
    calls = []
    original = open_clip.CLIP.encode_text

    def counting(self, text, *args, **kwargs):
        calls.append(len(text))
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(open_clip.CLIP, "encode_text", counting)
    return calls


def test_shapes_dim_and_unit_rows():
    embedder = tiny_embedder(templates="imagenet_select")
    assert embedder.dim == 64
    out = embedder(["cat", "traffic light", "person, human"])
    assert out.shape == (3, 64) and out.dtype == torch.float32 and out.device.type == "cpu"
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_template_and_synonym_ensembling_matches_direct_encoding(tiny_checkpoint):
    templates = ["a photo of a {}.", "itap of the {}.", "A photo of a {} in the scene"]
    embedder = tiny_embedder(tiny_checkpoint, templates=templates, batch_size=2)
    out = embedder(["cat, kitten", "dog"])

    model, _, tokenizer = load_open_clip(TINY_CLIP, str(tiny_checkpoint), str(TINY_CLIP_JSON))

    @torch.no_grad()
    def class_embedding(synonyms):
        texts = [t.format(s) for s in synonyms for t in templates]
        mean = F.normalize(model.encode_text(tokenizer(texts)), dim=-1).mean(dim=0)
        return mean / mean.norm()

    expected = torch.stack([class_embedding(["cat", "kitten"]), class_embedding(["dog"])])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert float(out[0] @ class_embedding(["cat"])) < 0.99999


def test_model_is_built_lazily_and_cached_vocabularies_skip_the_encoder(encode_calls, tiny_checkpoint):
    embedder = tiny_embedder(tiny_checkpoint, templates="imagenet_select")
    assert encode_calls == []
    first = embedder(["cat", "dog, puppy"])
    assert sum(encode_calls) == 3 * 8
    second = embedder(["cat", "dog, puppy"])
    assert sum(encode_calls) == 3 * 8
    torch.testing.assert_close(first, second)
    embedder(["dog, puppy", "cat"])  # another order is another vocabulary
    assert sum(encode_calls) == 2 * 3 * 8


def test_saved_checkpoint_reloads_with_identical_embeddings(tiny_checkpoint):
    names = ["sheep", "sofa", "tv monitor"]
    reloaded = tiny_embedder(tiny_checkpoint)(names)
    torch.testing.assert_close(reloaded, tiny_embedder(tiny_checkpoint)(names), rtol=0, atol=0)

    torch.manual_seed(0)  # the fixture's seed: rebuild the saved weights in memory
    original, _, tokenizer = load_open_clip(TINY_CLIP, "", str(TINY_CLIP_JSON))
    with torch.no_grad():
        direct = F.normalize(original.encode_text(tokenizer([f"A photo of a {n} in the scene" for n in names])), dim=-1)
    torch.testing.assert_close(reloaded, direct, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(tiny_embedder()(names), reloaded, atol=1e-3)  # a fresh random init differs


def test_missing_local_checkpoint_is_named(tmp_path):
    missing = tmp_path / "weights" / "ViT-B-16.pt"
    with pytest.raises(FileNotFoundError, match="CLIP_PRETRAINED") as info:
        tiny_embedder(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(FileNotFoundError, match="openai"):  # unknown tag of a built-in model lists its tags
        ClipTextEmbedder(model_name="ViT-B-16", pretrained="openia", cache_dir=None)


def test_model_name_and_config_errors(tmp_path):
    with pytest.raises(ValueError, match="CLIP_MODEL.*ViT-X-99"):
        ClipTextEmbedder(model_name="ViT-X-99", pretrained="", cache_dir=None)
    with pytest.raises(ValueError, match=f"must be '{TINY_CLIP}'"):
        ClipTextEmbedder(model_name="ViT-B-16", pretrained="", model_config=str(TINY_CLIP_JSON), cache_dir=None)
    with pytest.raises(FileNotFoundError, match="CLIP_MODEL_CONFIG.*nope.json"):
        ClipTextEmbedder(model_name="nope", pretrained="", model_config=str(tmp_path / "nope.json"))
    bad = tmp_path / "half.json"
    bad.write_text('{"embed_dim": 8}')
    with pytest.raises(ValueError, match="vision_cfg"):
        ClipTextEmbedder(model_name="half", pretrained="", model_config=str(bad))


def test_checkpoint_of_another_architecture_is_reported(tmp_path):
    wrong = tmp_path / "wrong.pt"
    torch.save({"visual.proj": torch.zeros(3)}, wrong)
    with pytest.raises(RuntimeError, match="wrong.pt.*does not load into open_clip model 'tiny_clip'"):
        tiny_embedder(wrong)(["cat"])


def test_offline_pretrained_tag_fails_fast_and_says_what_to_do():
    hub = pytest.importorskip("huggingface_hub")
    if not hub.constants.is_offline_mode():
        pytest.skip("needs HF_HUB_OFFLINE=1 (otherwise open_clip retries the network for ~46 s)")
    if any(hub.try_to_load_from_cache("timm/vit_base_patch16_clip_224.openai", f)
           for f in ("open_clip_pytorch_model.bin", "open_clip_model.safetensors")):
        pytest.skip("ViT-B-16/openai weights are in the local cache")
    embedder = ClipTextEmbedder(model_name="ViT-B-16", pretrained="openai", cache_dir=None)
    assert embedder.dim == 512  # known without loading anything
    start = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        embedder(["cat"])
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "MODEL.CLASS_EMBED.CLIP_PRETRAINED /path/to/file.pt" in message
    assert "ViT-B-16-quickgelu" in message and "huggingface" in message


def test_build_from_config_and_shared_loader(tmp_path):
    from detectron2.config import get_cfg

    from zegcag import add_zegcag_config

    cfg = get_cfg()
    add_zegcag_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.CLASS_EMBED.PROVIDER = "clip"
    cfg.MODEL.CLASS_EMBED.CLIP_MODEL = TINY_CLIP
    cfg.MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG = str(TINY_CLIP_JSON)
    cfg.MODEL.CLASS_EMBED.CLIP_PRETRAINED = ""
    cfg.MODEL.CLASS_EMBED.TEMPLATES = "imagenet_select"
    cfg.MODEL.CLASS_EMBED.CACHE_DIR = str(tmp_path)
    embedder = build_class_embedder(cfg)
    assert isinstance(embedder, ClipTextEmbedder)
    assert embedder.dim == 64 and len(embedder.templates) == 8
    assert embedder(["cat", "dog"]).shape == (2, 64)

    model, preprocess, tokenizer = embedder.load()
    assert model is embedder.load().model and not model.training
    assert preprocess["size"] == (64, 64) and len(preprocess["mean"]) == len(preprocess["std"]) == 3
    assert tokenizer(["a cat", "a dog"]).shape == (2, 77)
    assert model.encode_image(torch.zeros(1, 3, 64, 64)).shape == (1, 64)


def test_explicit_template_lists_are_checked():
    assert tiny_embedder(templates=["a {}", "the {}"]).templates == ("a {}", "the {}")
    with pytest.raises(ValueError, match="placeholder"):
        tiny_embedder(templates=["a photo"])
    with pytest.raises(ValueError, match="did you mean 'ViT-B-16'"):
        ClipTextEmbedder(model_name="ViT-B/16", pretrained="", cache_dir=None)
