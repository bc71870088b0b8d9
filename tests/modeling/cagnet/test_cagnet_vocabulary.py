"""CaGNet on a new vocabulary: a classifier fitted on generated features of its classes (vocabulary_classifier.py),
its cache, the training vocabulary untouched, and the fit itself on a generator whose right answer is known."""
from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_model

from zegcag.embeddings.word_vectors import MissingWordVectorError
from zegcag.modeling import Vocabulary
from zegcag.modeling.cagnet import FeatureClassifier, Generator
from zegcag.modeling.cagnet import vocabulary_classifier as vc
from zegcag_testing import make_cfg, tiny_cagnet_opts

SYNTHETIC = "configs/cagnet_synthetic.yaml"
UNSEEN = ("potted plant", "sheep", "sofa", "train", "tv monitor")
EC_ONLY = ("MODEL.CAGNET.GENERATOR", "False", "MODEL.CAGNET.DISCRIMINATOR", "False",
           "MODEL.CAGNET.CONTEXT_MODULE", "False")


def build(config=SYNTHETIC, *opts):
    torch.manual_seed(0)
    return build_model(make_cfg(config, *tiny_cagnet_opts(), *opts)).eval()


def images(n=2, h=32, w=40):
    g = torch.Generator().manual_seed(1)
    return [{"image": torch.randint(0, 255, (3, h, w), dtype=torch.uint8, generator=g)} for _ in range(n)]


def scores(model, inputs):
    with torch.no_grad():
        return torch.stack([out["sem_seg"] for out in model(inputs)])


@pytest.fixture
def count_fits(monkeypatch):
    """Counts calls of fit_vocabulary_classifier (the cache calls it on a miss)."""
    calls, fit = [0], vc.fit_vocabulary_classifier

    def counted(*args, **kwargs):
        calls[0] += 1
        return fit(*args, **kwargs)

    monkeypatch.setattr(vc, "fit_vocabulary_classifier", counted)
    return calls


@pytest.mark.parametrize("config", [SYNTHETIC, "configs/cagnet_patch_synthetic.yaml", "configs/zs3net_synthetic.yaml"])
def test_new_vocabulary_scores_its_own_classes(tiny_benchmark, config):
    opts = ("MODEL.CAGNET.FAKE_MAP_SIZE", "6") if "patch" in config else ()
    model = build(config, *opts)
    assert model.synthesised_classes == ()
    model.set_vocabulary(Vocabulary.unseen_only(["sheep", "sofa", "cat"]))
    out = scores(model, images())
    assert out.shape == (2, 3, 32, 40) and torch.isfinite(out).all()
    assert model.synthesised_classes == ("sheep", "sofa", "cat")
    assert model.vocabulary_classifier().num_classes == 3 and model.classifier.num_classes == 21


def test_training_vocabulary_is_untouched_and_the_checkpoint_keys_do_not_change(tiny_benchmark):
    model = build()
    training = model.vocabulary
    before = scores(model, images())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.set_vocabulary(Vocabulary.unseen_only(UNSEEN))
    after = model.state_dict()
    assert list(after) == list(state)
    assert all(torch.equal(after[k], v) for k, v in state.items())  # fitting changes no weight of the model
    build().load_state_dict(after)  # strict: same keys, same shapes
    model.set_vocabulary(training)
    assert model.synthesised_classes == () and model.vocabulary_classifier() is model.classifier
    assert torch.equal(scores(model, images()), before)


def test_fitted_classifiers_are_cached_per_vocabulary(tiny_benchmark, count_fits):
    model = build()
    training, new = model.vocabulary, Vocabulary.unseen_only(UNSEEN)
    model.set_vocabulary(new)
    first = scores(model, images())
    model.set_vocabulary(new)
    model.set_vocabulary(training)
    model.set_vocabulary(Vocabulary.unseen_only(UNSEEN))
    assert count_fits[0] == 1 and torch.equal(scores(model, images()), first)
    model.set_vocabulary(Vocabulary.unseen_only(UNSEEN[::-1]))  # another order is another vocabulary
    assert count_fits[0] == 2
    with torch.no_grad():
        model.generator.layers[-1].bias.add_(1.0)  # e.g. new weights loaded: the cached classifier is stale
    model.set_vocabulary(new)
    assert count_fits[0] == 3
    model.vocabulary_classifiers.settings = vc.VocabularyFitSettings(steps=5)
    model.set_vocabulary(new)
    assert count_fits[0] == 4


def test_model_without_generator_cannot_take_a_new_vocabulary(tiny_benchmark):
    model = build(SYNTHETIC, *EC_ONLY)
    model.set_vocabulary(model.vocabulary)  # the training vocabulary is fine
    with pytest.raises(ValueError, match="no generator .*needs the generator to synthesise a classifier"):
        model.set_vocabulary(Vocabulary.unseen_only(["cat", "dog"]))
    assert len(model.vocabulary.class_names) == 21 and scores(model, images(1)).shape[1] == 21


def test_names_without_word_vectors_are_all_listed_and_leave_the_model_as_it_was(tiny_benchmark):
    model = build()
    model.set_vocabulary(Vocabulary.unseen_only(UNSEEN))
    with pytest.raises(MissingWordVectorError) as err:
        model.set_vocabulary(Vocabulary.unseen_only(["sheep", "flumph", "grue"]))
    assert "'flumph', 'grue'" in str(err.value) and "MODEL.CLASS_EMBED.PROVIDER clip" in str(err.value)
    assert model.vocabulary.class_names == UNSEEN and model.synthesised_classes == UNSEEN
    assert scores(model, images(1)).shape[1] == 5


def test_fitted_head_recognises_fresh_generated_features(tiny_benchmark):
    model = build()
    model.set_vocabulary(Vocabulary.unseen_only(UNSEEN))
    fitted = model.vocabulary_classifier()
    features, labels = vc.generate_class_features(model.generator, model.class_embeddings, 200,
                                                  torch.Generator().manual_seed(123))  # other z than the fit's
    with torch.no_grad():
        accuracy = (fitted(features[:, :, None, None])[:, :, 0, 0].argmax(1) == labels).float().mean().item()
    assert accuracy > 1 / len(UNSEEN) + 0.4


def one_hot_generator(num_classes: int, noise: float) -> Generator:
    """G(e_i, z) = 2 e_i + noise * z for one-hot class embeddings e_i (D = C = num_classes)."""
    g = Generator(num_classes, num_classes, num_classes, hidden=(num_classes,), dropout=(0.5,))
    eye = torch.eye(num_classes)[:, :, None, None]
    with torch.no_grad():
        g.embed_in.weight.copy_(2 * eye / g.embed_scale)
        g.latent_in.weight.copy_(noise * eye)
        g.latent_in.bias.zero_()
        g.layers[-1].weight.copy_(eye)
        g.layers[-1].bias.zero_()
    return g


def split_trunk_classifier(num_classes: int, kernel_size: int = 1) -> FeatureClassifier:
    """Trunk keeping each feature channel c as hidden units +c and -c (centre tap only); 7 training classes."""
    c = FeatureClassifier(num_classes, 2 * num_classes, 7, kernel_size)
    with torch.no_grad():
        c.trunk[0].weight.zero_()
        eye, centre = torch.eye(num_classes), kernel_size // 2
        c.trunk[0].weight[:, :, centre, centre] = torch.cat([eye, -eye])
        c.trunk[0].bias.zero_()
    return c


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_fit_recovers_a_known_class_to_feature_map(kernel_size):
    k = 4
    perm = torch.tensor([2, 0, 3, 1])  # vocabulary class j has the embedding (and so the feature channel) perm[j]
    generator, classifier = one_hot_generator(k, noise=0.2), split_trunk_classifier(k, kernel_size)
    fitted = vc.fit_vocabulary_classifier(generator, classifier, torch.eye(k)[perm])
    assert fitted.num_classes == k and fitted.kernel_size == kernel_size and classifier.num_classes == 7
    # clean features of each channel, as k x k patches: class j is the one whose channel is perm[j]
    patches = (2 * torch.eye(k)[perm])[:, :, None, None].expand(-1, -1, kernel_size, kernel_size)
    centre = kernel_size // 2
    with torch.no_grad():
        assert torch.equal(fitted(patches)[:, :, centre, centre].argmax(1), torch.arange(k))
        noise = torch.randn(50 * k, k, generator=torch.Generator().manual_seed(5))
        noisy = 2 * torch.eye(k)[perm].repeat(50, 1) + 0.2 * noise
        predicted = fitted(noisy[:, :, None, None].expand(-1, -1, kernel_size, kernel_size))[:, :, centre, centre]
    assert (predicted.argmax(1) == torch.arange(k).repeat(50)).float().mean() > 0.95
    assert generator.training and classifier.training  # modes restored, the trained classifier untouched


def test_fit_is_deterministic_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    generator, classifier = Generator(6, 8, 8, (16,), (0.1,)), FeatureClassifier(8, 12, 9, 3)
    embeddings = torch.nn.functional.normalize(torch.randn(4, 6), dim=1)
    state = torch.get_rng_state()
    first = vc.fit_vocabulary_classifier(generator, classifier, embeddings, vc.VocabularyFitSettings(steps=20))
    second = vc.fit_vocabulary_classifier(generator, classifier, embeddings, vc.VocabularyFitSettings(steps=20))
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other = vc.fit_vocabulary_classifier(generator, classifier, embeddings, vc.VocabularyFitSettings(steps=20, seed=1))
    assert not torch.equal(other.head.weight, first.head.weight)
    assert not first.training and not any(p.requires_grad for p in first.parameters())


def test_trunk_is_frozen_unless_asked():
    torch.manual_seed(0)
    generator, classifier = Generator(6, 8, 8, (16,), (0.1,)), FeatureClassifier(8, 12, 9)
    embeddings = torch.nn.functional.normalize(torch.randn(3, 6), dim=1)
    frozen = vc.fit_vocabulary_classifier(generator, classifier, embeddings, vc.VocabularyFitSettings(steps=10))
    tuned = vc.fit_vocabulary_classifier(generator, classifier, embeddings,
                                         vc.VocabularyFitSettings(steps=10, train_trunk=True))
    assert torch.equal(frozen.trunk[0].weight, classifier.trunk[0].weight)
    assert not torch.equal(tuned.trunk[0].weight, classifier.trunk[0].weight)


def test_pure_patch_trunk_is_the_trunk_at_a_patch_centre():
    torch.manual_seed(0)
    classifier = FeatureClassifier(5, 7, 3, kernel_size=3).eval()
    with torch.no_grad():
        classifier.trunk[0].weight.normal_()
        classifier.trunk[0].bias.normal_()
        features = torch.randn(10, 5)
        full = classifier.trunk(features[:, :, None, None].expand(-1, -1, 3, 3).contiguous())[:, :, 1, 1]
        assert torch.allclose(vc.pure_patch_trunk(classifier.trunk, features), full, atol=1e-5)


def test_settings_from_config_and_bad_values():
    from detectron2.config import CfgNode

    cfg = make_cfg(SYNTHETIC)
    assert vc.VocabularyFitSettings.from_config(cfg) == vc.VocabularyFitSettings()  # config defaults = class defaults
    cfg.MODEL.CAGNET.VOCAB_FIT = CfgNode({"STEPS": 7, "LR": 0.5, "BATCH_PIXELS": 3, "FEATURES_PER_CLASS": 2,
                                          "TRAIN_TRUNK": True, "SEED": 4})
    assert vc.VocabularyFitSettings.from_config(cfg) == vc.VocabularyFitSettings(7, 0.5, 3, 2, True, 4)
    with pytest.raises(ValueError, match="VOCAB_FIT.STEPS must be at least 1"):
        vc.VocabularyFitSettings(steps=0)
    with pytest.raises(ValueError, match="VOCAB_FIT.LR must be positive"):
        vc.VocabularyFitSettings(lr=0.0)
