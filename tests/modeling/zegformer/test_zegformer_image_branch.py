"""CLIP image branch: segment boxes, sub-image extraction per style on hand-made masks, the tiny CLIP end to end."""
from __future__ import annotations

import pytest
import torch

from zegcag.modeling.zegformer.image_branch import (
    ClipImageBranch,
    ImageBranchTextEmbedder,
    extract_sub_images,
    mask_boxes,
)
from zegformer_testing import TINY_CLIP_JSON

H, W = 8, 10


@pytest.fixture
def image():
    return torch.arange(3 * H * W, dtype=torch.float32).view(3, H, W)


@pytest.fixture
def mask():
    """Rows 2..4, columns 3..6, with one hole inside the box."""
    m = torch.zeros(H, W, dtype=torch.bool)
    m[2:5, 3:7] = True
    m[2, 3] = False
    return m


def test_mask_boxes(mask):
    boxes = mask_boxes(torch.stack([mask, torch.zeros_like(mask), torch.ones_like(mask)]))
    assert boxes.tolist() == [[3, 2, 7, 5], [0, 0, W, H], [0, 0, W, H]]
    single = torch.zeros(1, H, W, dtype=torch.bool)
    single[0, 7, 9] = True
    assert mask_boxes(single).tolist() == [[9, 7, 10, 8]]


def test_cropmask_is_the_masked_box(image, mask):
    out = extract_sub_images(image, mask[None], "cropmask", (3, 4))
    assert out.shape == (1, 3, 3, 4)
    expected = image[:, 2:5, 3:7] * mask[2:5, 3:7]
    assert torch.allclose(out[0], expected)
    assert out[0, :, 0, 0].abs().sum() == 0  # the hole is blanked


def test_crop_keeps_unmasked_pixels(image, mask):
    out = extract_sub_images(image, mask[None], "crop", (3, 4))
    assert torch.allclose(out[0], image[:, 2:5, 3:7])


def test_mask_style_is_the_whole_masked_image(image, mask):
    out = extract_sub_images(image, mask[None], "mask", (H, W))
    assert torch.allclose(out[0], image * mask)


@pytest.mark.parametrize("style", ["cropmask", "crop", "mask"])
def test_empty_mask_gives_the_whole_image(image, style):
    out = extract_sub_images(image, torch.zeros(2, H, W, dtype=torch.bool), style, (H, W))
    assert torch.allclose(out[0], image) and torch.allclose(out[1], image)


def test_resampling_to_clip_size(image, mask):
    out = extract_sub_images(image, torch.stack([mask, ~mask]), "cropmask", 16)
    assert out.shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="CLIP_CLS_STYLE"):
        extract_sub_images(image, mask[None], "box", 16)


@pytest.fixture(scope="module")
def text_embedder():
    torch.manual_seed(0)
    return ImageBranchTextEmbedder(model_name=TINY_CLIP_JSON.stem, pretrained="", model_config=str(TINY_CLIP_JSON),
                                   templates="image_branch", cache_dir=None)


def test_clip_branch_logits(text_embedder, image, mask):
    names = ["cat", "dog", "potted plant"]
    masks = torch.stack([mask, ~mask, torch.zeros_like(mask), mask, mask]).float() * 20 - 10
    image = image / image.max() * 255
    branch = ClipImageBranch(text_embedder, style="cropmask", batch_size=2, input_format="RGB")
    logits = branch.class_logits(image, masks, names)
    assert logits.shape == (5, 3) and torch.isfinite(logits).all()
    assert torch.allclose(logits[0], logits[3], atol=1e-5)
    unbatched = ClipImageBranch(text_embedder, style="cropmask", batch_size=32, input_format="RGB")
    assert torch.allclose(unbatched.class_logits(image, masks, names), logits, atol=1e-4)
    assert branch.text_embeddings(names) is branch.text_embeddings(names)  # cached per vocabulary
    assert branch.text_embeddings(names[:2]).shape == (2, 64)
    bgr = ClipImageBranch(text_embedder, style="cropmask", batch_size=2, input_format="BGR")
    assert torch.allclose(bgr.class_logits(image.flip(0), masks, names), logits, atol=1e-4)
    logit_scale = text_embedder.load().model.logit_scale.exp().item()
    assert logits.abs().max().item() <= logit_scale * (1 + 1e-5)  # cosine similarity times the CLIP scale


def test_clip_branch_bad_settings(text_embedder):
    with pytest.raises(ValueError, match="CLIP_CLS_STYLE"):
        ClipImageBranch(text_embedder, style="bbox", batch_size=2, input_format="RGB")
    with pytest.raises(ValueError, match="CLIP_BATCH_SIZE"):
        ClipImageBranch(text_embedder, style="crop", batch_size=0, input_format="RGB")
    with pytest.raises(ValueError, match="INPUT.FORMAT"):
        ClipImageBranch(text_embedder, style="crop", batch_size=2, input_format="L")
