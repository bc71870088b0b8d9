"""CaGNet meta-architecture on CPU: the two steps' outputs and losses, where gradients go, inference,
the patch-wise variant, ablations, ZS3Net, self-training, and bad configurations."""
from __future__ import annotations

import logging

import pytest
import torch
from detectron2.modeling import build_model

from zegcag_testing import make_cfg, tiny_cagnet_opts

SYNTHETIC = "configs/cagnet_synthetic.yaml"


def build(tiny_benchmark, config=SYNTHETIC, *opts):
    torch.manual_seed(0)
    return build_model(make_cfg(config, *tiny_cagnet_opts(), *opts))


def batch(h=32, w=40, n=2, with_labels=True):
    out = []
    for _ in range(n):
        x = {"image": torch.randint(0, 255, (3, h, w), dtype=torch.uint8), "height": h, "width": w}
        if with_labels:
            x["sem_seg"] = torch.randint(0, 16, (h, w))  # seen classes only, as the mapper gives them
            x["sem_seg"][:8] = 255
        out.append(x)
    return out


def grads(module: torch.nn.Module) -> float:
    return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)


def test_training_step_outputs_and_losses(tiny_benchmark):
    model = build(tiny_benchmark).train()
    out = model.forward_train(batch())
    assert out.real.shape == out.fake.shape == (2, 16, 16, 20)  # output stride 2
    assert out.labels.shape == (2, 16, 20) and (out.labels[:, :4] == 255).all()
    assert set(model.discriminator_losses(out)) == {"loss_d_cls", "loss_d_adv"}
    losses = model.generator_losses(out)
    assert set(losses) == {"loss_cls", "loss_kl", "loss_rec", "loss_adv"}
    assert all(torch.isfinite(v) for v in losses.values())
    assert model.pixelcnn_losses(out) == {}  # pixel-wise: no PixelCNN


def test_discriminator_update_touches_only_classifier_and_discriminator(tiny_benchmark):
    model = build(tiny_benchmark).train()
    out = model.forward_train(batch())
    sum(model.discriminator_losses(out).values()).backward()
    assert grads(model.classifier) > 0 and grads(model.discriminator) > 0
    for m in (model.backbone, model.aspp, model.context_module, model.generator):
        assert grads(m) == 0


def test_generator_losses_reach_encoder_context_and_generator(tiny_benchmark):
    model = build(tiny_benchmark).train()
    out = model.forward_train(batch())
    losses = model.generator_losses(out)
    # X is the target of generation: the reconstruction term does not pull it towards G's output
    assert torch.autograd.grad(losses["loss_rec"], out.real, retain_graph=True, allow_unused=True)[0] is None
    rec_to_latent = torch.autograd.grad(losses["loss_rec"], model.context_module.latent.weight, retain_graph=True)[0]
    assert rec_to_latent.abs().sum() > 0  # ... but trains the latent code through z
    sum(losses.values()).backward()
    for m in (model.backbone, model.aspp, model.context_module, model.generator):
        assert grads(m) > 0


def test_official_code_variant_keeps_generator_losses_out_of_the_context_module(tiny_benchmark):
    model = build(tiny_benchmark, SYNTHETIC, "MODEL.CAGNET.GENERATOR_TRAINS_CONTEXT", "False").train()
    out = model.forward_train(batch())
    losses = model.generator_losses(out)
    (losses["loss_rec"] + losses["loss_adv"]).backward(inputs=list(model.context_module.parameters()))
    assert grads(model.context_module) == 0
    losses = model.generator_losses(model.forward_train(batch()))
    (losses["loss_cls"] + losses["loss_kl"]).backward()
    assert grads(model.context_module) > 0


def test_finetuning_step(tiny_benchmark):
    # the paper's finetuning step updates G (cagnet_synthetic.yaml keeps it fixed)
    model = build(tiny_benchmark, SYNTHETIC, "MODEL.CAGNET.FINETUNE_GENERATOR", "True").train()
    out = model.forward_finetune(3)
    assert out.real is None and out.fake.shape == (3, 16, 6, 6)
    unseen = torch.isin(out.gen_labels, torch.tensor(model.unseen_classes)).sum().item()
    assert unseen == 3 * 36 // 2  # 1:1 by default
    assert set(model.discriminator_losses(out)) == {"loss_d_cls_fake", "loss_d_adv"}
    losses = model.generator_losses(out)
    assert set(losses) == {"loss_cls_fake", "loss_adv"}
    sum(losses.values()).backward()
    assert grads(model.generator) > 0 and grads(model.backbone) == 0


def test_inference_uses_the_mean_latent_code_and_calibration(tiny_benchmark):
    model = build(tiny_benchmark).eval()
    inputs = batch(h=30, w=44, with_labels=False)
    with torch.no_grad():
        first, second = model(inputs), model(inputs)
        model.calibration_gamma = 2.0
        calibrated = model(inputs)
    assert first[0]["sem_seg"].shape == (21, 30, 44)
    assert torch.equal(first[0]["sem_seg"], second[0]["sem_seg"])  # deterministic: z = mu, no dropout
    diff = first[0]["sem_seg"] - calibrated[0]["sem_seg"]
    assert torch.allclose(diff[model.seen_mask], torch.full_like(diff[model.seen_mask], 2.0))
    assert torch.allclose(diff[~model.seen_mask], torch.zeros_like(diff[~model.seen_mask]))


def test_training_mode_forward_returns_the_objective(tiny_benchmark):
    model = build(tiny_benchmark).train()
    assert set(model(batch())) == {"loss_cls", "loss_kl", "loss_rec", "loss_adv"}


def test_patch_wise_variant(tiny_benchmark):
    model = build(tiny_benchmark, "configs/cagnet_patch_synthetic.yaml", "MODEL.CAGNET.FAKE_MAP_SIZE", "6")
    assert model.classifier.kernel_size == 3 and model.pixelcnn is not None
    model.train()
    out = model.forward_train(batch())
    (loss,) = model.pixelcnn_losses(out).values()
    loss.backward()
    assert grads(model.pixelcnn) > 0 and grads(model.backbone) == 0
    fake = model.forward_finetune(2)
    assert (fake.labels != 255).sum() == 2 * 4  # losses only at the 2x2 patch centres per map
    # one latent code per patch: the generator input is constant inside a patch for a pure patch
    assert fake.fake.shape == (2, 16, 6, 6)


def test_self_training_labels_only_ignored_pixels_with_unseen_classes(tiny_benchmark):
    model = build(tiny_benchmark, SYNTHETIC, "MODEL.CAGNET.ST.RULE", "best_unseen", "MODEL.CAGNET.ST.FRACTION", "1.0")
    model.train()
    out = model.forward_train(batch(), self_training=True)
    changed = out.labels != out.gt_labels
    assert changed.any() and (out.gt_labels[changed] == 255).all()
    assert torch.isin(out.labels[changed], torch.tensor(model.unseen_classes)).all()
    assert torch.equal(out.gen_labels, out.labels)


@pytest.mark.parametrize("opts,has", [
    (("MODEL.CAGNET.GENERATOR", "False", "MODEL.CAGNET.DISCRIMINATOR", "False",
      "MODEL.CAGNET.CONTEXT_MODULE", "False"), set()),                                   # E&C only
    (("MODEL.CAGNET.DISCRIMINATOR", "False", "MODEL.CAGNET.CONTEXT_MODULE", "False"), {"generator"}),  # +G
    (("MODEL.CAGNET.CONTEXT_MODULE", "False",), {"generator", "discriminator"}),       # +G+D
])
def test_ablations(tiny_benchmark, opts, has):
    model = build(tiny_benchmark, SYNTHETIC, *opts).train()
    assert model.context_module is None
    assert (model.generator is not None) == ("generator" in has) == model.can_finetune
    assert (model.discriminator is not None) == ("discriminator" in has)
    out = model.forward_train(batch())
    losses = model.generator_losses(out)
    assert "loss_kl" not in losses and ("loss_adv" in losses) == ("discriminator" in has)
    if not model.can_finetune:
        assert out.fake is None and set(losses) == {"loss_cls"}
        with pytest.raises(RuntimeError, match="no generator"):
            model.forward_finetune(1)


def test_zs3net_is_a_generator_from_noise_with_mmd(tiny_benchmark, caplog):
    with caplog.at_level(logging.WARNING):
        model = build(tiny_benchmark, "configs/zs3net_synthetic.yaml", "MODEL.CAGNET.DISCRIMINATOR", "True")
    assert "ZS3Net ignores MODEL.CAGNET.DISCRIMINATOR" in caplog.text
    assert type(model).__name__ == "ZS3Net"
    assert model.context_module is None and model.discriminator is None and model.losses.rec_loss == "mmd"
    model.train()
    assert set(model.generator_losses(model.forward_train(batch()))) == {"loss_cls", "loss_rec"}
    assert model.generator_losses(model.forward_finetune(1)) == {}  # G stays fixed while finetuning


def test_embedding_dimension_mismatch_is_a_clear_error(tiny_benchmark):
    with pytest.raises(ValueError, match=r"gives 600-d class embeddings but MODEL.CAGNET.EMBED_DIM is 300"):
        build(tiny_benchmark, SYNTHETIC, "MODEL.CAGNET.EMBED_DIM", "300")


def test_training_on_unseen_classes_is_a_clear_error(tiny_benchmark):
    with pytest.raises(ValueError, match="both seen and unseen"):
        build(tiny_benchmark, SYNTHETIC, "DATASETS.ZS3.TRAIN_ON_ALL_CLASSES", "True")


def test_discriminator_without_generator_is_a_clear_error(tiny_benchmark):
    with pytest.raises(ValueError, match="DISCRIMINATOR needs MODEL.CAGNET.GENERATOR"):
        build(tiny_benchmark, SYNTHETIC, "MODEL.CAGNET.GENERATOR", "False")


def test_voc_config_builds_a_dilated_resnet101_at_output_stride_8(tiny_benchmark):
    from detectron2.modeling import build_backbone

    cfg = make_cfg("configs/cagnet_voc.yaml", "MODEL.DEVICE", "cpu")
    backbone = build_backbone(cfg)
    assert backbone.output_shape()["res5"].stride == 8 and backbone.output_shape()["res5"].channels == 2048
    assert len(backbone.res4) == 23
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 64, 64))["res5"].shape[-2:] == (8, 8)


def test_reconstruction_trains_the_features_only_when_asked(tiny_benchmark):
    model = build(tiny_benchmark, SYNTHETIC, "MODEL.CAGNET.REC_TRAINS_FEATURES", "True").train()
    out = model.forward_train(batch())
    rec = model.generator_losses(out)["loss_rec"]
    assert torch.autograd.grad(rec, out.real, retain_graph=True)[0].abs().sum() > 0
    rec.backward()
    assert grads(model.backbone) > 0 and grads(model.generator) > 0
