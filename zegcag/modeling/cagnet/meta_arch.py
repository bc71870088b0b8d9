"""CaGNet: context-aware feature generation for zero-shot semantic segmentation (Gu et al., ACM MM'20),
pixel-wise (PATCH_SIZE 1) or patch-wise with a PixelCNN label prior (journal version, PATCH_SIZE k > 1).

Shapes: B batch, H/W padded input, h/w feature map, C feature dim, D class-embedding dim, K classes.
Networks: E = backbone + summed ASPP (``F: (B, C, h, w)``), CM = contextual module (latent code z,
contextual feature ``X: (B, C, h, w)``), G = generator (class embedding + z -> fake feature), C =
classifier (K logits per pixel), D = discriminator (on C's first layer).
The model exposes one method per part of a training step; CaGNetTrainer runs them with one optimizer each:
  training step:   forward_train -> discriminator_losses (update D, C) -> generator_losses (update E, CM, G)
  finetuning step: forward_finetune (fake seen+unseen label maps, z ~ N(0, 1)) -> the same two updates
Inference uses E, CM with z = mu and C only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone
from detectron2.structures import ImageList
from torch import nn

from ...data.protocol import resolve_split, training_classes
from ...embeddings import ClassEmbedder, build_class_embedder
from ..aspp_sum import SummedASPP
from ..vocabulary import Vocabulary
from ..zero_shot_segmentor import ZeroShotSegmentor, downsample_labels, pixel_cross_entropy
from .classifier import FeatureClassifier
from .contextual_module import ContextOutput, ContextualModule
from .discriminator import Discriminator
from .fake_labels import FakeLabelSampler
from .generator import Generator
from .losses import LossSettings, discriminator_adv_loss, generator_adv_loss, kl_loss
from .pixelcnn import PixelCNN, extract_label_patches
from .self_training import check_pseudo_label_rule, pseudo_label
from .vocabulary_classifier import VocabularyClassifiers, VocabularyFitSettings

logger = logging.getLogger(__name__)


@dataclass
class StepOutputs:
    """What one forward pass of a training or finetuning step produced (all at feature resolution)."""

    labels: torch.Tensor  # (B, h, w) targets of the losses; ignore_label where no loss counts
    gen_labels: torch.Tensor  # (B, h, w) classes G was conditioned on
    fake: torch.Tensor | None  # (B, C, h, w) generated features; None without a generator
    real: torch.Tensor | None = None  # (B, C, h, w) contextual features X; None when finetuning
    context: ContextOutput | None = None
    gt_labels: torch.Tensor | None = None  # (B, h, w) ground truth (unseen ignored), before pseudo-labels


@META_ARCH_REGISTRY.register()
class CaGNet(ZeroShotSegmentor):
    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        aspp: SummedASPP,
        context_module: ContextualModule | None,
        generator: Generator | None,
        classifier: FeatureClassifier,
        discriminator: Discriminator | None,
        pixelcnn: PixelCNN | None,
        fake_label_sampler: FakeLabelSampler | None,
        class_embedder: ClassEmbedder,
        vocabulary: Vocabulary,
        unseen_classes: Sequence[int],
        ignore_label: int,
        losses: LossSettings,
        finetune_generator: bool,
        generator_trains_context: bool,
        rec_trains_features: bool,
        sigmoid_features: bool,
        pseudo_label_rule: str,
        pseudo_label_fraction: float,
        pixelcnn_batch_size: int,
        vocab_fit: VocabularyFitSettings,
        calibration_gamma: float,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ) -> None:
        """
        Args:
            backbone, in_feature, aspp: the feature extractor E (``aspp`` maps ``in_feature`` to C channels).
            context_module: CM; None for the ablations without it (z ~ N(0, 1), X = F).
            generator, discriminator, pixelcnn: None when the ablation or the pixel-wise variant has none.
            fake_label_sampler: label maps for the finetuning step (None without a generator).
            class_embedder, vocabulary: fixed (K, D) class embeddings; the classifier has one output per class.
            unseen_classes: class ids that self-training may assign to ignored pixels.
            finetune_generator: update G in the finetuning step (CaGNet) or keep it fixed there (ZS3Net).
            generator_trains_context: G's losses reach the CM through z (paper objective); False detaches z
                as G's input (official code), so the CM learns from the classification and KL terms only.
            rec_trains_features: the reconstruction loss also reaches E and the CM through its target X (the
                paper's objective minimises it over E too); False: it trains G (and the CM through z) only.
            sigmoid_features: the official code's variant: features without CM pass through a sigmoid too.
            pseudo_label_rule, pseudo_label_fraction: the self-training rule (see self_training.py).
            pixelcnn_batch_size: label patches per PixelCNN update.
            calibration_gamma: subtracted from seen-class scores at inference.
        """
        super().__init__(pixel_mean=pixel_mean, pixel_std=pixel_std, calibration_gamma=calibration_gamma)
        self.backbone, self.in_feature, self.aspp = backbone, in_feature, aspp
        self.context_module, self.generator = context_module, generator
        self.classifier, self.discriminator, self.pixelcnn = classifier, discriminator, pixelcnn
        self.fake_label_sampler = fake_label_sampler
        self.class_embedder = class_embedder
        self.unseen_classes = tuple(unseen_classes)
        self.ignore_label = ignore_label
        self.losses = losses
        self.finetune_generator = finetune_generator
        self.generator_trains_context = generator_trains_context
        self.rec_trains_features = rec_trains_features
        self.sigmoid_features = sigmoid_features
        check_pseudo_label_rule(pseudo_label_rule, pseudo_label_fraction)
        self.pseudo_label_rule, self.pseudo_label_fraction = pseudo_label_rule, pseudo_label_fraction
        self.pixelcnn_batch_size = pixelcnn_batch_size
        # the vocabulary C was trained on; others get classifiers fitted on G's features (not in the state dict)
        self.training_class_names = tuple(vocabulary.class_names)
        self.vocabulary_classifiers = VocabularyClassifiers(vocab_fit)
        self.set_vocabulary(vocabulary)

    @classmethod
    def from_config(cls, cfg) -> dict:
        m = cfg.MODEL
        split = resolve_split(cfg, (cfg.DATASETS.TRAIN or cfg.DATASETS.TEST)[0])
        seen = training_classes(cfg, split)
        embedder = build_class_embedder(cfg)
        if embedder.dim != m.CAGNET.EMBED_DIM:
            raise ValueError(
                f"MODEL.CLASS_EMBED.PROVIDER '{m.CLASS_EMBED.PROVIDER}' gives {embedder.dim}-d class embeddings "
                f"but MODEL.CAGNET.EMBED_DIM is {m.CAGNET.EMBED_DIM}: set MODEL.CAGNET.EMBED_DIM {embedder.dim} "
                "(and train from scratch: the generator's first layer depends on it)"
            )
        if m.CAGNET.DISCRIMINATOR and not m.CAGNET.GENERATOR:
            raise ValueError("MODEL.CAGNET.DISCRIMINATOR needs MODEL.CAGNET.GENERATOR (D judges generated features)")
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        if m.CAGNET.IN_FEATURE not in shapes:
            raise KeyError(f"MODEL.CAGNET.IN_FEATURE '{m.CAGNET.IN_FEATURE}' is not a backbone output; "
                           f"it has {sorted(shapes)}")
        dim, k = m.CAGNET.FEATURE_DIM, m.CAGNET.PATCH_SIZE
        generator = pixelcnn = sampler = None
        if m.CAGNET.GENERATOR:
            generator = Generator(m.CAGNET.EMBED_DIM, dim, dim, m.CAGNET.GENERATOR_HIDDEN, m.CAGNET.GENERATOR_DROPOUT,
                                  sigmoid_output=m.CAGNET.SIGMOID_FEATURES)
            if k > 1:
                pixelcnn = PixelCNN(m.CAGNET.EMBED_DIM, split.num_classes, m.CAGNET.PIXELCNN.CHANNELS,
                                    m.CAGNET.PIXELCNN.LAYERS, k)
            sampler = FakeLabelSampler(
                seen, split.unseen, split.num_classes, seen_unseen_ratio=m.CAGNET.FAKE_SEEN_UNSEEN_RATIO,
                map_size=m.CAGNET.FAKE_MAP_SIZE, patch_size=k, fill_unseen=m.CAGNET.PATCH.FILL_UNSEEN,
                pure_to_mixed=m.CAGNET.PATCH.PURE_TO_MIXED, max_classes=m.CAGNET.PATCH.MAX_CLASSES,
                ignore_label=split.ignore_label,
            )
        context = None
        if m.CAGNET.CONTEXT_MODULE:
            context = ContextualModule(dim, m.CAGNET.CONTEXT_CHANNELS, m.CAGNET.CONTEXT_DILATIONS,
                                       m.CAGNET.SIGMOID_FEATURES)
        hidden = m.CAGNET.CLASSIFIER_HIDDEN
        return {
            "backbone": backbone,
            "in_feature": m.CAGNET.IN_FEATURE,
            "aspp": SummedASPP(shapes[m.CAGNET.IN_FEATURE].channels, dim, m.CAGNET.ASPP_DILATIONS),
            "context_module": context,
            "generator": generator,
            "classifier": FeatureClassifier(dim, hidden, split.num_classes, k, m.CAGNET.CLASSIFIER_DROPOUT,
                                            m.CAGNET.CLASSIFIER_INIT_STD),
            "discriminator": Discriminator(hidden) if m.CAGNET.DISCRIMINATOR else None,
            "pixelcnn": pixelcnn,
            "fake_label_sampler": sampler,
            "class_embedder": embedder,
            "vocabulary": Vocabulary(split.class_names, frozenset(seen)),
            "unseen_classes": split.unseen,
            "ignore_label": split.ignore_label,
            "losses": LossSettings(m.CAGNET.ADV_LOSS, m.CAGNET.ADV_WEIGHT, m.CAGNET.REC_LOSS, m.CAGNET.REC_WEIGHT,
                                   m.CAGNET.KL_WEIGHT, m.CAGNET.MMD_SIGMAS, m.CAGNET.MMD_MAX_PIXELS),
            "finetune_generator": m.CAGNET.FINETUNE_GENERATOR,
            "generator_trains_context": m.CAGNET.GENERATOR_TRAINS_CONTEXT,
            "rec_trains_features": m.CAGNET.REC_TRAINS_FEATURES,
            "sigmoid_features": m.CAGNET.SIGMOID_FEATURES,
            "pseudo_label_rule": m.CAGNET.ST.RULE,
            "pseudo_label_fraction": m.CAGNET.ST.FRACTION,
            "pixelcnn_batch_size": m.CAGNET.PIXELCNN.BATCH_SIZE,
            "vocab_fit": VocabularyFitSettings.from_config(cfg),
            "calibration_gamma": m.CAGNET.CALIBRATION_GAMMA,
            "pixel_mean": m.PIXEL_MEAN,
            "pixel_std": m.PIXEL_STD,
        }

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Embed the class names. The training vocabulary (the first one set: same names, same order) uses
        the trained classifier; any other gets one fitted on G's features of its classes (cached per
        vocabulary, see vocabulary_classifier.py), and ``synthesised_classes`` names them."""
        names = tuple(vocabulary.class_names)
        training = self.training_class_names
        if names == training and len(names) != self.classifier.num_classes:
            raise ValueError(f"the training vocabulary has {len(names)} classes but the classifier scores "
                             f"{self.classifier.num_classes}")
        if names != training and self.generator is None:
            raise ValueError(f"this CaGNet has no generator (MODEL.CAGNET.GENERATOR False): its classifier scores "
                             f"only its {len(training)} training classes, and a new vocabulary ({len(names)} "
                             "classes) needs the generator to synthesise a classifier")
        embeddings = self.class_embedder(names).to(self.device)
        expected = self.generator.embed_dim if self.generator is not None else embeddings.shape[1]
        if embeddings.shape[1] != expected:
            raise ValueError(f"class embeddings are {embeddings.shape[1]}-d but the generator was built for "
                             f"{expected}-d ones (MODEL.CAGNET.EMBED_DIM)")
        if names != training:  # fitted before any state changes, so a failure leaves the model as it was
            self.vocabulary_classifiers.get(names, self.generator, self.classifier, embeddings)
        self.vocabulary = vocabulary
        self.synthesised_classes = () if names == training else names
        self.register_buffer("class_embeddings", embeddings, False)
        self.register_buffer("seen_mask", vocabulary.seen_mask().to(self.device), False)

    def vocabulary_classifier(self) -> FeatureClassifier:
        """C for the current vocabulary: the trained one, or the one fitted for it (not a submodule)."""
        if not self.synthesised_classes:
            return self.classifier
        return self.vocabulary_classifiers.lookup(self.vocabulary.class_names).to(self.device)

    def _check_training_vocabulary(self) -> None:
        if self.synthesised_classes:
            raise RuntimeError("CaGNet trains on its training vocabulary, but another one is set "
                               f"({len(self.synthesised_classes)} classes): call set_vocabulary with the training "
                               "classes first")

    @property
    def can_finetune(self) -> bool:
        """Whether the model has a generator, so finetuning steps on generated features are possible."""
        return self.generator is not None

    def parameter_sets(self) -> dict[str, list[nn.Module]]:
        """Modules per optimizer role: backbone, aspp, context (E and CM), generator, discriminator (C and D),
        pixelcnn."""
        sets = {"backbone": [self.backbone], "aspp": [self.aspp], "context": [self.context_module],
                "generator": [self.generator], "discriminator": [self.classifier, self.discriminator],
                "pixelcnn": [self.pixelcnn]}
        return {name: [m for m in modules if m is not None] for name, modules in sets.items()}

    # ---- shared pieces ----------------------------------------------------------------------
    def preprocess(self, batched_inputs: list[dict]) -> ImageList:
        images = self.normalized_images(batched_inputs)
        return ImageList.from_tensors(images, self.backbone.size_divisibility)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """E: ``images: (B, 3, H, W)`` normalised -> ``F: (B, C, h, w)``."""
        return self.aspp(self.backbone(images)[self.in_feature])

    def contextual(self, features: torch.Tensor,
                   sample: bool | None = None) -> tuple[torch.Tensor, ContextOutput | None]:
        """CM: ``F`` -> contextual feature ``X: (B, C, h, w)`` and the latent code (None without CM)."""
        if self.context_module is None:
            return (torch.sigmoid(features) if self.sigmoid_features else features), None
        context = self.context_module(features, sample)
        return context.x, context

    def generate(self, labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """G's features ``(B, C, h, w)`` for ``labels: (B, h, w)`` (ignored pixels: zero embedding) and ``z``."""
        return self.generator.forward_labels(self.class_embeddings, labels, labels != self.ignore_label, z)

    def forward(self, batched_inputs: list[dict]) -> dict | list[dict]:
        """Inference -> ``[{"sem_seg": (K, H, W)}]``; training -> the E/CM/G objective of a training step."""
        if self.training:
            return self.generator_losses(self.forward_train(batched_inputs))
        return self.inference(batched_inputs)

    # ---- training step ------------------------------------------------------------------------
    def forward_train(self, batched_inputs: list[dict], self_training: bool = False) -> StepOutputs:
        """Real features of a batch and G's features for the same (downsampled) labels and latent codes."""
        self._check_training_vocabulary()
        images = self.preprocess(batched_inputs).tensor
        targets = [x["sem_seg"].to(self.device) for x in batched_inputs]
        targets = ImageList.from_tensors(targets, self.backbone.size_divisibility, self.ignore_label).tensor
        features = self.encode(images)
        x, context = self.contextual(features)
        gt = downsample_labels(targets, x.shape[-2:])
        labels = self.pseudo_labels(features, gt) if self_training else gt
        fake = None
        if self.generator is not None:
            if context is None:
                z = torch.randn_like(x)
            else:
                z = context.z if self.generator_trains_context else context.z.detach()
            fake = self.generate(labels, z)
        return StepOutputs(labels=labels, gen_labels=labels, fake=fake, real=x, context=context, gt_labels=gt)

    @torch.no_grad()
    def pseudo_labels(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Self-training: ignored pixels confidently predicted as an unseen class get that class."""
        x, _ = self.contextual(features.detach(), sample=False)
        was_training = self.classifier.training
        self.classifier.eval()
        try:
            logits = self.classifier(x)
        finally:
            self.classifier.train(was_training)
        return pseudo_label(logits, labels, self.unseen_classes, self.ignore_label, self.pseudo_label_rule,
                            self.pseudo_label_fraction)

    # ---- finetuning step ----------------------------------------------------------------------
    def forward_finetune(self, num_maps: int) -> StepOutputs:
        """G's features for ``num_maps`` fake label maps of seen and unseen classes; z ~ N(0, 1) per pixel or patch."""
        self._check_training_vocabulary()
        if self.generator is None or self.fake_label_sampler is None:
            raise RuntimeError("this CaGNet has no generator (MODEL.CAGNET.GENERATOR False): it cannot finetune")
        labels, loss_labels = self.fake_label_sampler.sample(num_maps, self.pixelcnn, self.class_embeddings)
        labels, loss_labels = labels.to(self.device), loss_labels.to(self.device)
        k, side = self.classifier.kernel_size, labels.shape[-1]
        z = torch.randn(num_maps, self.generator.latent_dim, side // k, side // k, device=self.device)
        z = z.repeat_interleave(k, dim=2).repeat_interleave(k, dim=3)  # one code per patch (k = 1: per pixel)
        return StepOutputs(labels=loss_labels, gen_labels=labels, fake=self.generate(labels, z))

    # ---- losses ---------------------------------------------------------------------------------
    def discriminator_losses(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        """Losses of C and D on detached features: CE (real features, or fake ones when finetuning) and D's
        adversarial term (real -> 1, fake -> 0; fake only when finetuning)."""
        mask = out.labels != self.ignore_label
        source = out.real if out.real is not None else out.fake
        trunk = self.classifier.trunk(source.detach())
        name = "loss_d_cls" if out.real is not None else "loss_d_cls_fake"
        losses = {name: pixel_cross_entropy(self.classifier.head(trunk), out.labels, self.ignore_label)}
        if self.discriminator is not None and out.fake is not None:
            fake_trunk = trunk if out.real is None else self.classifier.trunk(out.fake.detach())
            real_scores = self.discriminator(trunk) if out.real is not None else None
            losses["loss_d_adv"] = self.losses.adv_weight * discriminator_adv_loss(
                real_scores, self.discriminator(fake_trunk), mask, self.losses.adv_loss)
        return losses

    def generator_losses(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        """Training step: CE through E and CM, G's adversarial and reconstruction terms, KL of the latent code.
        Finetuning: CE of C on G's features and G's adversarial term (empty if G stays fixed)."""
        mask = out.labels != self.ignore_label
        losses = {}
        if out.real is not None:
            losses["loss_cls"] = pixel_cross_entropy(self.classifier(out.real), out.labels, self.ignore_label)
            if out.context is not None:
                losses["loss_kl"] = self.losses.kl_weight * kl_loss(out.context.mu, out.context.logvar, mask)
            if out.fake is not None:
                # X is the target of generation; it moves towards G's output only if REC trains the features
                target = out.real if self.rec_trains_features else out.real.detach()
                losses["loss_rec"] = self.losses.reconstruction(target, out.fake, out.labels, mask)
        elif self.finetune_generator:
            losses["loss_cls_fake"] = pixel_cross_entropy(self.classifier(out.fake), out.labels, self.ignore_label)
        else:
            return losses
        if self.discriminator is not None and out.fake is not None:
            scores = self.discriminator(self.classifier.trunk(out.fake))
            losses["loss_adv"] = self.losses.adv_weight * generator_adv_loss(scores, mask, self.losses.adv_loss)
        return losses

    def pixelcnn_losses(self, out: StepOutputs) -> dict[str, torch.Tensor]:
        """PixelCNN cross-entropy on k x k windows of the ground-truth (seen) labels; {} if none or no PixelCNN."""
        if self.pixelcnn is None or out.gt_labels is None:
            return {}
        patches = extract_label_patches(out.gt_labels, self.classifier.kernel_size, self.ignore_label)
        if len(patches) == 0:
            return {}
        if len(patches) > self.pixelcnn_batch_size:
            patches = patches[torch.randperm(len(patches), device=patches.device)[: self.pixelcnn_batch_size]]
        return {"loss_pixelcnn": self.pixelcnn.loss(patches, self.class_embeddings)}

    # ---- inference ------------------------------------------------------------------------------
    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        images = self.preprocess(batched_inputs)
        x, _ = self.contextual(self.encode(images.tensor), sample=False)
        return self.dense_results(self.vocabulary_classifier()(x), images, batched_inputs)
