"""PixelCNN over label patches: causal masking, training on seen patches, sampling from a forced prefix."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zegcag.modeling.cagnet import MaskedConv2d, PixelCNN
from zegcag.modeling.cagnet.pixelcnn import embed_patches, extract_label_patches


@pytest.mark.parametrize("k", [3, 5])
def test_output_at_a_position_does_not_depend_on_later_positions(k):
    torch.manual_seed(0)
    net = PixelCNN(embed_dim=6, num_classes=5, channels=8, num_layers=4, kernel_size=3)
    x = torch.randn(1, 6, k, k, requires_grad=True)
    for pos in range(k * k):
        row, col = divmod(pos, k)
        x.grad = None
        net(x)[0, :, row, col].sum().backward()
        influence = x.grad[0].abs().sum(0).flatten()
        assert (influence[pos:] == 0).all(), f"position {pos} sees itself or a later position"
        if col > 0:
            assert influence[pos - 1] > 0  # the left neighbour is visible
        if row > 0:
            assert influence[pos - k] > 0  # and the pixel above


def test_mask_types():
    a = MaskedConv2d(1, 1, 3, "A").mask[0, 0]
    b = MaskedConv2d(1, 1, 3, "B").mask[0, 0]
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="mask_type"):
        MaskedConv2d(1, 1, 3, "C")


def test_label_patches_skip_ignored_pixels():
    labels = torch.tensor([[[1, 1, 2, 2],
                            [1, 1, 2, 2],
                            [3, 3, 3, 255]]])
    patches = extract_label_patches(labels, 3, 255)
    assert patches.shape == (1, 3, 3)
    assert patches[0].tolist() == [[1, 1, 2], [1, 1, 2], [3, 3, 3]]
    assert extract_label_patches(labels[:, :2], 3, 255).shape == (0, 3, 3)


def test_training_learns_the_patch_structure():
    """Trained on vertical-stripe patches, the PixelCNN completes a patch by copying the column above."""
    torch.manual_seed(0)
    emb = F.normalize(torch.randn(4, 8), dim=1)
    net = PixelCNN(8, 4, channels=16, num_layers=3)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    stripes = torch.randint(0, 4, (256, 1, 3)).expand(-1, 3, -1).contiguous()
    first = net.loss(stripes, emb).item()
    for _ in range(150):
        opt.zero_grad()
        loss = net.loss(stripes, emb)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    prefix = torch.tensor([[0, 1, 2], [0, 0, 0], [0, 0, 0]]).expand(20, -1, -1)
    completed = net.complete(prefix, start=3, class_embeddings=emb, generator=torch.Generator().manual_seed(0))
    agreement = (completed[:, 1:] == torch.tensor([0, 1, 2])).float().mean()
    assert agreement > 0.9


def test_samples_keep_the_forced_prefix():
    torch.manual_seed(0)
    emb = torch.randn(6, 4)
    net = PixelCNN(4, 6, channels=8)
    prefix = torch.full((50, 3, 3), 5)
    out = net.complete(prefix, start=5, class_embeddings=emb, generator=torch.Generator().manual_seed(1))
    assert (out.flatten(1)[:, :5] == 5).all()
    assert (out.flatten(1)[:, 5:] != 5).any()  # the rest is sampled
    assert embed_patches(out, emb).shape == (50, 4, 3, 3)
