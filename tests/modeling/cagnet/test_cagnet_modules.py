"""CaGNet's networks and losses: shapes, inference behaviour, and the loss terms on hand-made inputs."""
from __future__ import annotations

import math

import pytest
import torch

from zegcag.modeling.cagnet import ContextualModule, Discriminator, FeatureClassifier, Generator
from zegcag.modeling.cagnet.losses import (
    LossSettings,
    discriminator_adv_loss,
    generator_adv_loss,
    kl_loss,
    l2_reconstruction_loss,
    mmd,
    mmd_reconstruction_loss,
)
from zegcag.modeling.zero_shot_segmentor import pixel_cross_entropy


def test_contextual_module_shapes_and_inference_uses_the_mean():
    torch.manual_seed(0)
    cm = ContextualModule(feature_dim=8, context_channels=6, dilations=(1, 2, 5))
    f = torch.randn(2, 8, 9, 11)
    out = cm(f)
    for t in (out.x, out.z, out.mu, out.logvar):
        assert t.shape == (2, 8, 9, 11)
    cm.train()
    assert not torch.allclose(cm(f).z, cm(f).z)  # z = mu + eps * sigma is sampled in training
    cm.eval()
    out = cm(f)
    assert torch.equal(out.z, out.mu)
    assert torch.allclose(out.x, f + f * torch.sigmoid(out.mu))  # X = F + F * sigmoid(z), paper Eq. 2


def test_contextual_module_context_reaches_the_largest_dilation():
    """Serial dilations 1, 2, 5 reach 8 pixels (RF 17), the 3x3 context selector one more: 9 away, not 10."""
    torch.manual_seed(0)
    cm = ContextualModule(feature_dim=2, context_channels=4, dilations=(1, 2, 5)).eval()
    f = torch.randn(1, 2, 21, 21, requires_grad=True)
    cm(f).mu[0, :, 10, 10].sum().backward()
    reach = (f.grad[0].abs().sum(0) > 0).nonzero()
    assert (reach - 10).abs().max() == 9


def test_latent_code_stays_finite_for_huge_features():
    """A badly scaled backbone (e.g. random weights with frozen BN) must not turn the KL term into inf."""
    torch.manual_seed(0)
    cm = ContextualModule(4, 4, (1,))
    out = cm(1e6 * torch.randn(1, 4, 5, 5))
    assert out.logvar.abs().max() <= 10.0
    assert torch.isfinite(kl_loss(out.mu, out.logvar, torch.ones(1, 5, 5, dtype=torch.bool)))


def test_sigmoid_feature_variant_bounds_the_output():
    cm = ContextualModule(4, 4, (1,), sigmoid_features=True).eval()
    x = cm(100 * torch.randn(1, 4, 5, 5)).x
    assert ((x > 0) & (x < 1)).all()


def test_generator_shapes_dropout_count_and_embedding_check():
    g = Generator(embed_dim=6, latent_dim=4, feature_dim=5, hidden=(7, 3), dropout=(0.1, 0.2))
    assert g(torch.randn(2, 6, 3, 4), torch.randn(2, 4, 3, 4)).shape == (2, 5, 3, 4)
    with pytest.raises(ValueError, match="6-d class embeddings, got 300-d"):
        g(torch.randn(2, 300, 3, 4), torch.randn(2, 4, 3, 4))
    with pytest.raises(ValueError, match="GENERATOR_DROPOUT has 1 values for 2 hidden layers"):
        Generator(6, 4, 5, hidden=(7, 3), dropout=(0.1,))


def test_generator_is_per_pixel():
    g = Generator(3, 2, 4, hidden=(8,), dropout=(0.0,)).eval()
    emb, z = torch.randn(1, 3, 5, 5), torch.randn(1, 2, 5, 5)
    out = g(emb, z)
    emb2 = emb.clone()
    emb2[..., 0, 0] += 1.0
    changed = (g(emb2, z) - out).abs().sum(1)[0] > 0
    assert changed[0, 0] and changed.sum() == 1


def test_classifier_and_discriminator_share_the_first_layer():
    c = FeatureClassifier(feature_dim=8, hidden=16, num_classes=21, kernel_size=3).eval()
    d = Discriminator(hidden=16)
    x = torch.randn(2, 8, 6, 7)
    assert c(x).shape == (2, 21, 6, 7)
    assert d(c.trunk(x)).shape == (2, 1, 6, 7)
    assert c.trunk[0].kernel_size == (3, 3)
    with pytest.raises(ValueError, match="positive odd"):
        FeatureClassifier(8, 16, 21, kernel_size=2)


def test_classifier_init_std():
    torch.manual_seed(0)
    official = FeatureClassifier(64, 256, 21, init_std=0.01)
    default = FeatureClassifier(64, 256, 21, init_std=0.0)  # PyTorch's init: U(+-1/sqrt(fan_in)), biases too
    for layer in (official.trunk[0], official.head):
        assert layer.weight.std().item() == pytest.approx(0.01, rel=0.1)
        assert not layer.bias.any()
    assert default.trunk[0].weight.std().item() == pytest.approx(1 / math.sqrt(3 * 64), rel=0.1)
    assert default.head.weight.std().item() == pytest.approx(1 / math.sqrt(3 * 256), rel=0.1)
    assert default.head.bias.abs().max().item() > 0


def test_kl_on_hand_made_inputs():
    mask = torch.tensor([[[True, False]]])  # (1, 1, 2)
    mu = torch.zeros(1, 2, 1, 2)
    logvar = torch.zeros(1, 2, 1, 2)
    assert kl_loss(mu, logvar, mask).item() == pytest.approx(0.0)  # N(0, 1) against itself
    mu[0, :, 0, 0] = torch.tensor([1.0, 3.0])
    logvar[0, :, 0, 0] = torch.tensor([0.0, math.log(4.0)])
    mu[0, :, 0, 1] = 100.0  # masked out
    # per entry: 0.5 * (mu^2 + var - 1 - log var): 0.5 and 0.5 * (9 + 4 - 1 - log 4); mean over the 2 entries
    expected = (0.5 + 0.5 * (12 - math.log(4.0))) / 2
    assert kl_loss(mu, logvar, mask).item() == pytest.approx(expected)


def test_l2_reconstruction_on_hand_made_inputs():
    real = torch.zeros(1, 2, 1, 3)
    fake = torch.tensor([[[[1.0, 2.0, 50.0]], [[3.0, 0.0, 50.0]]]])
    mask = torch.tensor([[[True, True, False]]])
    assert l2_reconstruction_loss(real, fake, mask).item() == pytest.approx((1 + 4 + 9 + 0) / 4)
    assert l2_reconstruction_loss(real, fake, torch.zeros_like(mask)).item() == 0.0


def test_mmd_is_zero_for_equal_samples_and_grows_with_the_shift():
    x = torch.randn(50, 4)
    assert mmd(x, x.clone(), (1.0, 2.0)).item() == pytest.approx(0.0, abs=1e-6)
    near, far = mmd(x, x + 0.5, (1.0, 2.0)), mmd(x, x + 3.0, (1.0, 2.0))
    assert 0 < near < far


def test_classwise_mmd_compares_each_class_separately():
    """Fake features of class 1 placed where class 2 is: per-class MMD sees it, a pooled one would not."""
    real = torch.zeros(1, 2, 1, 8)
    real[0, 0, 0, 4:] = 5.0
    labels = torch.tensor([[[1, 1, 1, 1, 2, 2, 2, 2]]])
    swapped = real.flip(-1)
    mask = torch.ones_like(labels, dtype=torch.bool)
    assert mmd_reconstruction_loss(real, real.clone(), labels, mask, (1.0,), 100).item() == pytest.approx(0, abs=1e-6)
    assert mmd_reconstruction_loss(real, swapped, labels, mask, (1.0,), 100).item() > 0.5


def test_adversarial_losses():
    mask = torch.ones(1, 1, 2, dtype=torch.bool)
    ones, zeros = torch.ones(1, 1, 1, 2), torch.zeros(1, 1, 1, 2)
    assert discriminator_adv_loss(ones, zeros, mask).item() == 0.0  # perfect D
    assert discriminator_adv_loss(zeros, ones, mask).item() == pytest.approx(2.0)
    assert discriminator_adv_loss(None, ones, mask).item() == pytest.approx(1.0)  # finetuning: fake term only
    assert generator_adv_loss(ones, mask).item() == 0.0
    assert generator_adv_loss(zeros, mask).item() == pytest.approx(1.0)
    big = torch.full((1, 1, 1, 2), 50.0)
    assert generator_adv_loss(big, mask, kind="l1").item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="ADV_LOSS"):
        generator_adv_loss(big, mask, kind="wgan")


def test_pixel_cross_entropy_ignores_and_survives_all_ignored():
    logits = torch.zeros(1, 3, 1, 2, requires_grad=True)
    labels = torch.tensor([[[1, 255]]])
    assert pixel_cross_entropy(logits, labels, 255).item() == pytest.approx(math.log(3))
    empty = pixel_cross_entropy(logits, torch.full_like(labels, 255), 255)
    assert empty.item() == 0.0 and empty.requires_grad


def test_loss_settings_validate_their_choices():
    with pytest.raises(ValueError, match="REC_LOSS"):
        LossSettings(rec_loss="l1")
    with pytest.raises(ValueError, match="MMD_SIGMAS"):
        LossSettings(rec_loss="mmd", mmd_sigmas=())
    settings = LossSettings(rec_weight=10.0)
    real, fake = torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    mask = torch.ones(1, 1, 1, dtype=torch.bool)
    assert settings.reconstruction(real, fake, torch.zeros(1, 1, 1, dtype=torch.long), mask).item() == 10.0


def test_generator_from_labels_matches_the_embedding_map_and_weighs_the_class_like_z():
    torch.manual_seed(0)
    g = Generator(embed_dim=300, latent_dim=300, feature_dim=5, hidden=(16,), dropout=(0.0,)).eval()
    classes = torch.nn.functional.normalize(torch.randn(4, 300), dim=1)  # unit rows, like word vectors
    labels = torch.tensor([[[0, 3, 255], [2, 2, 1]]])
    valid = labels != 255
    z = torch.randn(1, 300, 2, 3)
    emb = (classes[torch.where(valid, labels, 0)] * valid[..., None]).permute(0, 3, 1, 2)
    assert torch.allclose(g.forward_labels(classes, labels, valid, z), g(emb, z), atol=1e-5)
    # unit-norm embeddings are rescaled: at initialisation a D-d class embedding moves the first layer about as
    # much as a D-d z ~ N(0, 1) (unscaled, 1/sqrt(D) as much)
    by_class = g.project_classes(classes).std()
    by_latent = (g.latent_in(torch.randn(1, 300, 16, 16)) - g.latent_in.bias[:, None, None]).std()
    assert 0.2 < (by_class / by_latent).item() < 5
