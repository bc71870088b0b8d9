"""Every config key zegcag adds to Detectron2's, with its default and what it means."""
from __future__ import annotations

from detectron2.config import CfgNode as CN


def add_zegcag_config(cfg: CN) -> None:
    """Add zegcag's keys to a Detectron2 config (call after ``add_deeplab_config``)."""
    # ---- data: zero-shot protocol -------------------------------------------------------
    cfg.DATASETS.ZS3 = CN()
    # Class names that replace the dataset's own unseen list (empty: use the dataset's split).
    cfg.DATASETS.ZS3.UNSEEN_CLASSES = []
    # Training images with unseen pixels: "ignore" labels them ignore_label, "drop" removes the image.
    cfg.DATASETS.ZS3.UNSEEN_POLICY = "ignore"
    # Train on every class, unseen included: the supervised upper bound, not a zero-shot run.
    cfg.DATASETS.ZS3.TRAIN_ON_ALL_CLASSES = False

    # Which dataset mapper builds training inputs ("zs3_semantic": image + dense label map).
    cfg.INPUT.DATASET_MAPPER_NAME = "zs3_semantic"
    # SSD-style photometric distortion in training.
    cfg.INPUT.COLOR_AUG_SSD = False

    # ---- class embeddings ---------------------------------------------------------------
    cfg.MODEL.CLASS_EMBED = CN()
    # Provider registered in EMBEDDER_REGISTRY: "word2vec", "fasttext", "w2v+ft" or "clip".
    cfg.MODEL.CLASS_EMBED.PROVIDER = "w2v+ft"
    # open_clip architecture name (provider "clip").
    cfg.MODEL.CLASS_EMBED.CLIP_MODEL = "ViT-B-16"
    # open_clip pretrained tag (e.g. "openai") or a local checkpoint path; "" = random init (tests only).
    cfg.MODEL.CLASS_EMBED.CLIP_PRETRAINED = "openai"
    # Optional JSON file of a custom open_clip architecture, registered under its file stem.
    cfg.MODEL.CLASS_EMBED.CLIP_MODEL_CONFIG = ""
    # Prompt-template set for the text encoder: "single", "imagenet_select" or "imagenet".
    cfg.MODEL.CLASS_EMBED.TEMPLATES = "single"
    # Directory of the on-disk embedding cache ("" = $ZEGCAG_CACHE or ~/.cache/zegcag/embeddings).
    cfg.MODEL.CLASS_EMBED.CACHE_DIR = ""

    # ---- small CPU backbone (synthetic benchmark) ---------------------------------------
    cfg.MODEL.SMALL_CONVNET = CN()
    # Output channels of each 3x3 conv + norm + ReLU layer.
    cfg.MODEL.SMALL_CONVNET.CHANNELS = [32, 64, 64, 64, 64]
    # Stride of each layer (the product is the output stride).
    cfg.MODEL.SMALL_CONVNET.STRIDES = [1, 2, 1, 1, 1]
    # Dilation of each layer.
    cfg.MODEL.SMALL_CONVNET.DILATIONS = [1, 1, 1, 2, 1]
    # Normalisation layer ("BN", "GN", "" for none).
    cfg.MODEL.SMALL_CONVNET.NORM = "BN"

    # ---- SPNet baseline -----------------------------------------------------------------
    cfg.MODEL.SPNET = CN()
    # Backbone feature projected into the class-embedding space.
    cfg.MODEL.SPNET.IN_FEATURE = "res5"
    # Dilations of the DeepLab-v2 summed-ASPP projection (empty: a single 1x1 conv).
    cfg.MODEL.SPNET.ASPP_DILATIONS = []
    # Calibration gamma subtracted from seen-class scores at inference (0 = off).
    cfg.MODEL.SPNET.CALIBRATION_GAMMA = 0.0
    # Cross-entropy on the feature grid against nearest-downsampled labels instead of on scores upsampled to the
    # input size: about half the CPU step time with 157 seen classes (the DeepLab / CaGNet code's way).
    cfg.MODEL.SPNET.LOSS_AT_FEATURE_RESOLUTION = False

    # ---- ZegFormer ------------------------------------------------------------------------
    cfg.MODEL.ZEGFORMER = CN()
    # Backbone features of the FPN pixel decoder (any order; used fine to coarse).
    cfg.MODEL.ZEGFORMER.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    # Channels of the pixel decoder's intermediate maps.
    cfg.MODEL.ZEGFORMER.CONVS_DIM = 256
    # Channels of the per-pixel mask features (and of the query mask embeddings).
    cfg.MODEL.ZEGFORMER.MASK_DIM = 256
    # Normalisation of the pixel decoder's convs ("GN", "BN", "" for none).
    cfg.MODEL.ZEGFORMER.NORM = "GN"
    # Backbone feature the query decoder attends to.
    cfg.MODEL.ZEGFORMER.TRANSFORMER_IN_FEATURE = "res5"
    # Query decoder width (even, divisible by NHEADS).
    cfg.MODEL.ZEGFORMER.HIDDEN_DIM = 256
    # Number of learned segment queries.
    cfg.MODEL.ZEGFORMER.NUM_OBJECT_QUERIES = 100
    # Attention heads of the query decoder.
    cfg.MODEL.ZEGFORMER.NHEADS = 8
    # Feed-forward width of the query decoder layers.
    cfg.MODEL.ZEGFORMER.DIM_FEEDFORWARD = 2048
    # Number of query decoder layers.
    cfg.MODEL.ZEGFORMER.DEC_LAYERS = 6
    # Dropout of the query decoder.
    cfg.MODEL.ZEGFORMER.DROPOUT = 0.1
    # Pre-LayerNorm decoder layers instead of DETR's post-norm.
    cfg.MODEL.ZEGFORMER.PRE_NORM = False
    # Project the transformer input with a 1x1 conv even when its channels equal HIDDEN_DIM.
    cfg.MODEL.ZEGFORMER.ENFORCE_INPUT_PROJ = False
    # Losses on every decoder layer's predictions, not only the last.
    cfg.MODEL.ZEGFORMER.DEEP_SUPERVISION = True
    # What the segment classifier projects into the class-embedding space: "query" (paper and official code: the
    # decoder's query state) or "mask_pooled" (ours: TRANSFORMER_IN_FEATURE averaged under each query's predicted
    # mask (binarised at 0.5, detached); a per-segment SPNet-style classifier that does not depend on query identity)
    cfg.MODEL.ZEGFORMER.SEGMENT_EMBEDDING = "query"
    # With "mask_pooled": weight of an extra per-pixel SPNet cross-entropy that trains the pooled classifier's projection
    # on every pixel of TRANSFORMER_IN_FEATURE against the seen labels (0 = off)
    cfg.MODEL.ZEGFORMER.PIXEL_CLASS_WEIGHT = 0.0
    # Temperature tau of the segment classifier: logits = cosine similarity / tau (fixed).
    cfg.MODEL.ZEGFORMER.TEMPERATURE = 0.01
    # No-object score: "cosine" with a normalised learned embedding (paper) or "dot" unnormalised (official code).
    cfg.MODEL.ZEGFORMER.NO_OBJECT_SIMILARITY = "cosine"
    # Cross-entropy weight of the no-object class (real classes weigh 1).
    cfg.MODEL.ZEGFORMER.NO_OBJECT_WEIGHT = 0.1
    # Weight of the classification loss and of the class term of the matching cost.
    cfg.MODEL.ZEGFORMER.CLASS_WEIGHT = 1.0
    # Weight of the sigmoid focal mask loss and of its matching cost.
    cfg.MODEL.ZEGFORMER.MASK_WEIGHT = 20.0
    # Weight of the dice loss and of its matching cost.
    cfg.MODEL.ZEGFORMER.DICE_WEIGHT = 1.0
    # Ignore pixels (unseen objects, unlabelled) are negatives of every mask loss and cost (official); False: left out.
    cfg.MODEL.ZEGFORMER.IGNORE_PIXELS_AS_NEGATIVES = True
    # Images and labels are padded to a multiple of this (ResNet reports 0; the strides need 32).
    cfg.MODEL.ZEGFORMER.SIZE_DIVISIBILITY = 32
    # Inference: "seg" (ZegFormer-seg), "img" (ZegFormer-img, CLIP image branch) or "fusion" (ZegFormer).
    cfg.MODEL.ZEGFORMER.INFERENCE_MODE = "seg"
    # Sub-images of segments for CLIP: "cropmask" (masked bounding box), "crop" (bounding box) or "mask".
    cfg.MODEL.ZEGFORMER.CLIP_CLS_STYLE = "cropmask"
    # Prompt-template set of the CLIP image branch's text side (see zegcag/embeddings/templates.py).
    cfg.MODEL.ZEGFORMER.CLIP_IMAGE_TEMPLATES = "image_branch"
    # Sub-images per CLIP image-encoder pass (bounds inference memory).
    cfg.MODEL.ZEGFORMER.CLIP_BATCH_SIZE = 32
    # The CLIP branch classifies only the k most confident segments, the rest keep the segment head's scores (0 = all).
    cfg.MODEL.ZEGFORMER.CLIP_TOPK = 0
    # Put the segment head's no-object logit into the CLIP branch softmax (official code; the paper omits it).
    cfg.MODEL.ZEGFORMER.CLIP_NO_OBJECT_IN_SOFTMAX = True
    # Fusion lambda: weight of the segment head on seen classes and of CLIP on unseen ones (official 2/3).
    cfg.MODEL.ZEGFORMER.FUSION_LAMBDA = 2.0 / 3.0
    # Calibration gamma subtracted from seen-class scores at inference (0 = off).
    cfg.MODEL.ZEGFORMER.CALIBRATION_GAMMA = 0.0

    # ---- CaGNet (and the ZS3Net baseline built from its parts) ----------------------------
    cfg.MODEL.CAGNET = CN()
    # Backbone feature fed to the summed ASPP.
    cfg.MODEL.CAGNET.IN_FEATURE = "res5"
    # Dilations of the DeepLab-v2 summed ASPP mapping the backbone feature to FEATURE_DIM (empty: a 1x1 conv).
    cfg.MODEL.CAGNET.ASPP_DILATIONS = [6, 12, 18, 24]
    # Channels of the visual feature (F, X), of the latent code z and of generated features (paper: 600).
    cfg.MODEL.CAGNET.FEATURE_DIM = 600
    # Class-embedding dimension the generator is built for; must equal MODEL.CLASS_EMBED.PROVIDER's (w2v+ft: 600).
    cfg.MODEL.CAGNET.EMBED_DIM = 600
    # Use the Contextual Module (latent code from context); False: z ~ N(0, 1) and X = F (ablations, ZS3Net).
    cfg.MODEL.CAGNET.CONTEXT_MODULE = True
    # Width of each serial dilated conv of the Contextual Module (paper: FEATURE_DIM; official code: 256).
    cfg.MODEL.CAGNET.CONTEXT_CHANNELS = 600
    # Dilations of the Contextual Module's serial 3x3 convs, one context scale each.
    cfg.MODEL.CAGNET.CONTEXT_DILATIONS = [1, 2, 5]
    # Official-code variant: sigmoid on the features (CM input and output, generator output).
    cfg.MODEL.CAGNET.SIGMOID_FEATURES = False
    # Use the feature generator G (False: the "E&C only" ablation, no finetuning step).
    cfg.MODEL.CAGNET.GENERATOR = True
    # Widths of the generator's hidden 1x1 convs (paper: 512 hidden units).
    cfg.MODEL.CAGNET.GENERATOR_HIDDEN = [512, 512]
    # Dropout after each hidden generator layer (one value per GENERATOR_HIDDEN entry).
    cfg.MODEL.CAGNET.GENERATOR_DROPOUT = [0.1, 0.1]
    # Use the discriminator D (False: the "+G" ablation and ZS3Net).
    cfg.MODEL.CAGNET.DISCRIMINATOR = True
    # Width of the first layer shared by the classifier and the discriminator.
    cfg.MODEL.CAGNET.CLASSIFIER_HIDDEN = 1024
    # Dropout after the shared first layer.
    cfg.MODEL.CAGNET.CLASSIFIER_DROPOUT = 0.5
    # Std of the Gaussian initial weights of C's two layers (official code: 0.01); 0: PyTorch's default init.
    cfg.MODEL.CAGNET.CLASSIFIER_INIT_STD = 0.01
    # 1: pixel-wise CaGNet; k > 1 (odd): patch-wise, kxk classifier first layer and PixelCNN-sampled kxk label patches.
    cfg.MODEL.CAGNET.PATCH_SIZE = 1
    # Adversarial loss: "lsgan" (paper: squared distance) or "l1" (official code: L1 after a sigmoid).
    cfg.MODEL.CAGNET.ADV_LOSS = "lsgan"
    # Weight of the adversarial terms.
    cfg.MODEL.CAGNET.ADV_WEIGHT = 1.0
    # Feature reconstruction loss: "l2" (paper) or "mmd" (class-wise multi-kernel MMD, ZS3Net's GMMN).
    cfg.MODEL.CAGNET.REC_LOSS = "l2"
    # Weight of the reconstruction loss (paper lambda1 = 10).
    cfg.MODEL.CAGNET.REC_WEIGHT = 10.0
    # Weight of the KL term of the latent code (paper lambda2 = 100; the KL is averaged over entries).
    cfg.MODEL.CAGNET.KL_WEIGHT = 100.0
    # Gaussian kernel widths of the MMD reconstruction loss.
    cfg.MODEL.CAGNET.MMD_SIGMAS = [2.0, 5.0, 10.0, 20.0, 40.0, 80.0]
    # At most this many pixels per class enter one MMD term (memory grows with its square).
    cfg.MODEL.CAGNET.MMD_MAX_PIXELS = 512
    # Update G in the finetuning step (CaGNet); False keeps it fixed there (ZS3Net trains G on real features only).
    cfg.MODEL.CAGNET.FINETUNE_GENERATOR = True
    # G's losses reach the Contextual Module through z (paper); False detaches z as G's input (official code).
    cfg.MODEL.CAGNET.GENERATOR_TRAINS_CONTEXT = True
    # REC also trains E and the CM through its target X (paper objective: min over E); False: X is a fixed target.
    cfg.MODEL.CAGNET.REC_TRAINS_FEATURES = False
    # Seen : unseen pixel ratio of the fake label maps of the finetuning step (paper Table 5: 1:1).
    cfg.MODEL.CAGNET.FAKE_SEEN_UNSEEN_RATIO = [1.0, 1.0]
    # Side of a fake label map, at feature resolution (a multiple of PATCH_SIZE).
    cfg.MODEL.CAGNET.FAKE_MAP_SIZE = 48
    # Fake label maps per finetuning step.
    cfg.MODEL.CAGNET.FAKE_BATCH_SIZE = 8
    # Iterations of training steps only, before training and finetuning steps alternate.
    cfg.MODEL.CAGNET.INITIAL_TRAIN_ITERS = 0
    # In the alternation: this many training steps ...
    cfg.MODEL.CAGNET.TRAIN_PERIOD = 100
    # ... after this many finetuning steps (the alternation starts with finetuning).
    cfg.MODEL.CAGNET.FINETUNE_PERIOD = 100
    # Adam learning rate of the generator.
    cfg.MODEL.CAGNET.GENERATOR_LR = 2e-4
    # Optimizers whose LR follows SOLVER.LR_SCHEDULER_NAME (others keep a constant LR): backbone (E, CM), generator,
    # discriminator (C, D), pixelcnn. A decayed LR leaves nothing for late finetuning steps to learn with.
    cfg.MODEL.CAGNET.SCHEDULED_OPTIMIZERS = ["backbone", "generator", "discriminator", "pixelcnn"]
    # Adam learning rate of the classifier and the discriminator.
    cfg.MODEL.CAGNET.DISCRIMINATOR_LR = 2.5e-4
    # Adam weight decay of the classifier and the discriminator.
    cfg.MODEL.CAGNET.DISCRIMINATOR_WEIGHT_DECAY = 5e-4
    # Learning-rate multiplier of the Contextual Module (SOLVER.BASE_LR is the backbone's).
    cfg.MODEL.CAGNET.CONTEXT_LR_MULTIPLIER = 5.0
    # Learning-rate multiplier of the ASPP.
    cfg.MODEL.CAGNET.ASPP_LR_MULTIPLIER = 10.0
    # Calibration gamma subtracted from seen-class scores at inference (0 = off).
    cfg.MODEL.CAGNET.CALIBRATION_GAMMA = 0.0
    cfg.MODEL.CAGNET.PIXELCNN = CN()
    # Channels of the PixelCNN's masked convs (patch-wise only).
    cfg.MODEL.CAGNET.PIXELCNN.CHANNELS = 64
    # Masked convs of the PixelCNN: one of type A, then type B.
    cfg.MODEL.CAGNET.PIXELCNN.LAYERS = 4
    # Label patches per PixelCNN update (random windows of the batch's seen labels).
    cfg.MODEL.CAGNET.PIXELCNN.BATCH_SIZE = 1024
    # Adam learning rate of the PixelCNN, trained alongside the training steps.
    cfg.MODEL.CAGNET.PIXELCNN.LR = 1e-3
    cfg.MODEL.CAGNET.PATCH = CN()
    # lambda_f: raster pixels of a mixed patch set to one random unseen class before PixelCNN sampling.
    cfg.MODEL.CAGNET.PATCH.FILL_UNSEEN = 5
    # lambda_r: pure (single-class) patches per mixed patch in a fake map.
    cfg.MODEL.CAGNET.PATCH.PURE_TO_MIXED = 4.0
    # Mixed patches with more classes than this are resampled.
    cfg.MODEL.CAGNET.PATCH.MAX_CLASSES = 3
    cfg.MODEL.CAGNET.ST = CN()
    # Self-training (+ST): training steps pseudo-label ignored pixels with confident unseen predictions.
    cfg.MODEL.CAGNET.ST.ENABLED = False
    # First iteration whose training steps use pseudo-labels.
    cfg.MODEL.CAGNET.ST.START_ITER = 0
    # Candidates: "argmax_unseen" (top class is unseen, ZS3Net) or "best_unseen" (best unseen class, CaGNet code).
    cfg.MODEL.CAGNET.ST.RULE = "argmax_unseen"
    # Fraction of the candidates of each unseen class kept, the most confident first.
    cfg.MODEL.CAGNET.ST.FRACTION = 0.25
    cfg.MODEL.CAGNET.VOCAB_FIT = CN()
    # A test-time vocabulary other than the training one gets a classifier head fitted on G's features
    # (zegcag/modeling/cagnet/vocabulary_classifier.py). Adam steps of that fit.
    cfg.MODEL.CAGNET.VOCAB_FIT.STEPS = 200
    # Adam learning rate of the fitted head.
    cfg.MODEL.CAGNET.VOCAB_FIT.LR = 0.05
    # Generated features per fitting step.
    cfg.MODEL.CAGNET.VOCAB_FIT.BATCH_PIXELS = 512
    # Generated features drawn per class (the pool the steps sample from).
    cfg.MODEL.CAGNET.VOCAB_FIT.FEATURES_PER_CLASS = 128
    # Also finetune a copy of the classifier's first layer (default: keep the trained one frozen).
    cfg.MODEL.CAGNET.VOCAB_FIT.TRAIN_TRUNK = False
    # Seed of the fit, so a vocabulary always gets the same classifier.
    cfg.MODEL.CAGNET.VOCAB_FIT.SEED = 0

    # ---- optimisation -------------------------------------------------------------------
    # "SGD" or "ADAMW".
    cfg.SOLVER.OPTIMIZER = "SGD"
    # Learning-rate multiplier of backbone parameters.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 1.0
    # Weight decay of embedding tables (nn.Embedding, e.g. ZegFormer's learned queries).
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0

    # ---- generalized zero-shot evaluation -------------------------------------------------
    cfg.TEST.GZS3 = CN()
    # Also compute boundary precision / recall / F of the predicted grouping (slower).
    cfg.TEST.GZS3.BOUNDARY = False
    # Boundary match tolerance as a fraction of the image diagonal.
    cfg.TEST.GZS3.BOUNDARY_MAX_DIST_RATIO = 0.0075
    # Write one PNG of predicted class ids per image under OUTPUT_DIR/inference/predictions.
    cfg.TEST.GZS3.WRITE_PREDICTIONS = False
    # After training, choose the calibration gamma maximising hIoU on this dataset ("" = keep the config's).
    cfg.TEST.GZS3.CALIBRATION_DATASET = ""
    # Candidate gammas of that search.
    cfg.TEST.GZS3.CALIBRATION_GAMMAS = [0.25 * i for i in range(41)]
