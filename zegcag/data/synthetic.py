"""Built-in synthetic zero-shot segmentation benchmark ("tex" construction, see datasets/README_synthetic.md).

Each object class gets a texture that is a fixed *linear* function of its word embedding, so a model
that learns the texture -> embedding map on seen classes can recognise unseen ones:

    a_c   = zscore_over_classes(W @ (e_c - mean_c e_c))          W: (k, D) iid N(0, 1), fixed seed
    tex   = 0.5 + amp / sqrt(k) * sum_j (a_c + s * n)_j * tile_j  tile_j: (3, t, t), n ~ N(0, I_k)

Shapes: K = object classes (20), D = embedding dim (600), k = appearance dim, t = tile size,
S = image size. Class 0 is the texture-free background. The appearance depends only on the
embeddings and ``appearance_seed``, never on the unseen list: one dataset serves every split.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

from .datasets.register_synthetic import synthetic_folder_name
from .datasets.splits import ZS3Split, load_split

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SUBSETS = ("train", "val", "calib")
VECTORS_DIR = Path(__file__).resolve().parent.parent / "embeddings" / "vectors" / "voc12"
_SHAPES = ("ellipse", "polygon", "blob")


@dataclass(frozen=True)
class SyntheticBenchmarkConfig:
    """Every constant of the generator; the whole config is written to meta.json."""

    seed: int = 0  # scenes (layouts, classes, instance noise); per image rng = (seed, subset, index)
    appearance_seed: int = 0  # the fixed random map W and the tiles
    image_size: int = 64
    num_train: int = 3000
    num_val: int = 400
    num_calib: int = 200
    min_objects: int = 2
    max_objects: int = 4
    k: int = 32  # appearance dimension = number of texture tiles
    tile_size: int = 8
    instance_noise: float = 0.3  # std of the per-instance perturbation of a_c
    split_name: str = "synthetic"
    tile_blur_sigma: float = 0.7
    texture_amplitude: float = 0.25  # divided by sqrt(k)
    texture_mean: float = 0.5
    brightness_range: tuple[float, float] = (0.85, 1.15)  # per-instance gain
    bias_range: tuple[float, float] = (-0.08, 0.08)  # per-instance offset
    radius_range: tuple[float, float] = (0.12, 0.3)  # object radius as a fraction of image_size
    min_aspect: float = 0.5  # ellipse minor/major axis ratio ~ U(min_aspect, 1)
    polygon_vertices: tuple[int, int] = (3, 6)
    blob_noise: float = 0.4  # contour roughness of the thresholded-noise blobs
    background_color_range: tuple[float, float] = (0.3, 0.7)
    background_noise: float = 0.05  # std of the low-frequency background shading
    background_noise_grid: int = 4  # its control-grid size (cells per side)
    pixel_noise: float = 0.03

    def __post_init__(self) -> None:
        checks = {
            "image_size": self.image_size >= self.tile_size >= 1,
            "min_objects": 1 <= self.min_objects <= self.max_objects,
            "k": self.k >= 1,
            "num_train": min(self.num_train, self.num_val, self.num_calib) >= 0,
            "radius_range": 0 < self.radius_range[0] <= self.radius_range[1],
            "polygon_vertices": 3 <= self.polygon_vertices[0] <= self.polygon_vertices[1],
            "min_aspect": 0 < self.min_aspect <= 1,
            "background_noise_grid": self.background_noise_grid >= 2,
        }
        bad = [key for key, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid SyntheticBenchmarkConfig field(s) {bad}: {self}")

    def counts(self) -> dict[str, int]:
        return dict(zip(SUBSETS, (self.num_train, self.num_val, self.num_calib)))

    def to_json(self) -> dict:
        """The config as it reads back from meta.json (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def object_class_embeddings(split: ZS3Split, vectors_dir: Path = VECTORS_DIR) -> np.ndarray:
    """w2v+ft embeddings of the split's object classes 1..K -> (K, 600), unit rows.

    The VOC class set is read straight from the shipped VOC vectors (row i = VOC class i) after checking the
    names match; other class sets (``synthetic_coco``) by name, through the w2v+ft class embedder the models use.
    """
    if split.name != "synthetic":
        from ..embeddings.word_vectors import Word2VecFastTextEmbedder

        return Word2VecFastTextEmbedder()(list(split.class_names[1:])).double().numpy()
    meta = json.loads((vectors_dir / "meta.json").read_text())
    vec_names = {int(i): str(n) for i, n in meta["labels"]}
    for i, name in enumerate(split.class_names[1:], start=1):
        if vec_names.get(i, "").replace(" ", "") != name.replace(" ", ""):
            raise ValueError(
                f"split '{split.name}' class {i} '{name}' does not match row {i} "
                f"('{vec_names.get(i)}') of {vectors_dir / 'meta.json'}"
            )
    halves = [np.load(vectors_dir / f"{p}.npy").astype(np.float64) for p in ("word2vec", "fasttext")]
    rows = slice(1, split.num_classes)
    return _l2(np.concatenate([_l2(h[rows]) for h in halves], axis=1))


def class_appearance(embeddings: np.ndarray, cfg: SyntheticBenchmarkConfig) -> np.ndarray:
    """(K, D) object-class embeddings -> (K, k) appearance codes a_c.

    Centred on the mean class embedding, projected by the fixed Gaussian W (k, D) and z-scored per
    dimension over the K classes: the raw projections are dominated by the shared component.
    """
    emb = np.asarray(embeddings, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] < 2:
        raise ValueError(f"embeddings must be (K>=2, D), got shape {emb.shape}")
    w = np.random.default_rng([cfg.appearance_seed, 0]).standard_normal((cfg.k, emb.shape[1]))
    proj = (emb - emb.mean(axis=0)) @ w.T
    std = proj.std(axis=0)
    if np.any(std < 1e-12):
        raise ValueError("class embeddings are (nearly) identical: cannot z-score the appearance")
    return (proj - proj.mean(axis=0)) / std


def make_tiles(cfg: SyntheticBenchmarkConfig) -> np.ndarray:
    """The k fixed texture bases -> (k, 3, t, t): Gaussian noise, periodic blur, unit RMS each."""
    t = cfg.tile_size
    tiles = np.random.default_rng([cfg.appearance_seed, 1]).standard_normal((cfg.k, 3, t, t))
    # wrap mode: the tile repeats periodically over the object, so it must blur across its own edges.
    tiles = gaussian_filter(tiles, sigma=(0, 0, cfg.tile_blur_sigma, cfg.tile_blur_sigma), mode="wrap")
    return tiles / np.sqrt((tiles**2).mean(axis=(1, 2, 3), keepdims=True))


def _smooth_noise(rng: np.random.Generator, grid: int, size: int) -> np.ndarray:
    """(size, size) low-frequency noise of roughly unit std: a bicubic upsampled (grid, grid) field."""
    return cv2.resize(rng.standard_normal((grid, grid)), (size, size), interpolation=cv2.INTER_CUBIC)


def _object_mask(rng: np.random.Generator, cfg: SyntheticBenchmarkConfig, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """One random ellipse / polygon / blob -> (S, S) bool."""
    s = cfg.image_size
    r = rng.uniform(*cfg.radius_range) * s
    cy, cx = rng.uniform(0.15 * s, 0.85 * s, size=2)
    shape = _SHAPES[rng.integers(len(_SHAPES))]
    if shape == "ellipse":
        theta = rng.uniform(0, np.pi)
        minor = r * rng.uniform(cfg.min_aspect, 1.0)
        u = (xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)
        v = -(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)
        return (u / r) ** 2 + (v / minor) ** 2 <= 1.0
    if shape == "polygon":
        n = int(rng.integers(cfg.polygon_vertices[0], cfg.polygon_vertices[1] + 1))
        # evenly spaced angles with small jitter keep every gap below pi, so the centre is inside.
        ang = rng.uniform(0, 2 * np.pi) + 2 * np.pi * (np.arange(n) + rng.uniform(-0.2, 0.2, n)) / n
        rad = r * rng.uniform(0.7, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
        mask = np.zeros((s, s), np.uint8)
        # pixel centres sit at integer coordinates; 4 fractional bits for sub-pixel vertices.
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        return mask.astype(bool)
    dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / r
    field = 1.0 - dist + cfg.blob_noise * _smooth_noise(rng, 6, s)
    return (field > 0) | (dist < 0.3)


def render_scene(
    rng: np.random.Generator, appearance: np.ndarray, tiles: np.ndarray, cfg: SyntheticBenchmarkConfig
) -> tuple[np.ndarray, np.ndarray]:
    """One scene -> (image (S, S, 3) uint8 RGB, label (S, S) uint8).

    ``appearance[i]`` (K, k) is the code of object class i + 1; label 0 is background. Objects are
    painted in order, so later ones occlude earlier ones.
    """
    s, t = cfg.image_size, cfg.tile_size
    num_obj_classes, k = appearance.shape
    if tiles.shape[0] != k:
        raise ValueError(f"appearance has k={k} dimensions but there are {tiles.shape[0]} tiles")
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    image = rng.uniform(*cfg.background_color_range, size=3)[None, None, :] + (
        cfg.background_noise * _smooth_noise(rng, cfg.background_noise_grid, s)[:, :, None]
    )
    label = np.zeros((s, s), np.uint8)
    flat_tiles = tiles.reshape(k, -1)
    reps = s // t + 2
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        cls = int(rng.integers(num_obj_classes))
        mask = _object_mask(rng, cfg, yy, xx)
        code = appearance[cls] + cfg.instance_noise * rng.standard_normal(k)
        tile = cfg.texture_mean + cfg.texture_amplitude / np.sqrt(k) * (code @ flat_tiles).reshape(3, t, t)
        oy, ox = rng.integers(t, size=2)  # one common shift keeps the sign of every amplitude
        texture = np.tile(tile.transpose(1, 2, 0), (reps, reps, 1))[oy : oy + s, ox : ox + s]
        texture = texture * rng.uniform(*cfg.brightness_range) + rng.uniform(*cfg.bias_range)
        image[mask] = texture[mask]
        label[mask] = cls + 1
    image = image + cfg.pixel_noise * rng.standard_normal(image.shape)
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8), label


def _read_meta(folder: Path) -> dict | None:
    path = folder / "meta.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _holds(meta: dict | None, cfg: SyntheticBenchmarkConfig) -> bool:
    return meta is not None and meta.get("config") == cfg.to_json() and meta.get("version") == GENERATOR_VERSION


def _write_subsets(
    tmp: Path, appearance: np.ndarray, tiles: np.ndarray, cfg: SyntheticBenchmarkConfig, num_classes: int
) -> np.ndarray:
    """Render and write every image / label PNG under ``tmp`` -> (C,) pixel count per class."""
    pixel_counts = np.zeros(num_classes, np.int64)
    for subset_index, (subset, count) in enumerate(cfg.counts().items()):
        (tmp / "images" / subset).mkdir(parents=True)
        (tmp / "labels" / subset).mkdir(parents=True)
        for i in range(count):
            # one generator per image: changing a count never changes the other images.
            rng = np.random.default_rng([cfg.seed, subset_index, i])
            image, label = render_scene(rng, appearance, tiles, cfg)
            pixel_counts += np.bincount(label.ravel(), minlength=num_classes)
            for kind, array in (("images", image[:, :, ::-1]), ("labels", label)):
                path = tmp / kind / subset / f"{i:05d}.png"
                if not cv2.imwrite(str(path), array):
                    raise OSError(f"could not write {path}")
    return pixel_counts


def generate_benchmark(root: Path, cfg: SyntheticBenchmarkConfig | None = None, overwrite: bool = False) -> Path:
    """Write root/<synthetic_folder_name(seed)>/{images,labels}/{train,val,calib}/*.png + meta.json.

    Skips (and returns the folder) when it already holds this exact config; refuses to replace a
    folder with another config or without meta.json unless ``overwrite``.
    """
    cfg = cfg or SyntheticBenchmarkConfig()
    split = load_split(cfg.split_name)
    folder = Path(root) / synthetic_folder_name(cfg.seed, cfg.split_name)
    if folder.exists():
        meta = _read_meta(folder)
        if _holds(meta, cfg):
            logger.info("synthetic benchmark already generated at %s", folder)
            return folder
        if not overwrite:
            why = "has no meta.json" if meta is None else "was generated with another config or generator version"
            raise FileExistsError(
                f"{folder} exists and {why}; pass overwrite=True (--overwrite) to replace it, "
                f"or choose another output root"
            )
        logger.warning("replacing %s (overwrite=True)", folder)

    appearance = class_appearance(object_class_embeddings(split), cfg)
    tiles = make_tiles(cfg)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        pixel_counts = _write_subsets(tmp, appearance, tiles, cfg, split.num_classes)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    meta = {
        "generator": "zegcag.data.synthetic",
        "version": GENERATOR_VERSION,
        "config": cfg.to_json(),
        "classes": list(split.class_names),
        "background": 0,
        "ignore_label": split.ignore_label,
        "embeddings": "word2vec+fasttext of classes 1..K, each half L2-normalised, concatenated, renormalised",
        "counts": cfg.counts(),
        "pixel_fraction": dict(zip(split.class_names, np.round(pixel_counts / max(pixel_counts.sum(), 1), 6).tolist())),
        "layout": "images/<subset>/<i:05d>.png (RGB), labels/<subset>/<i:05d>.png (uint8 class ids, all classes)",
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if overwrite and folder.exists():
        shutil.rmtree(folder)
    try:
        tmp.rename(folder)
    except OSError:
        # another process (e.g. a second training worker) finished the same benchmark first.
        shutil.rmtree(tmp)
        if not _holds(_read_meta(folder), cfg):
            raise
        logger.info("synthetic benchmark already generated at %s", folder)
        return folder
    logger.info("synthetic benchmark written to %s (%s)", folder, cfg.counts())
    return folder


def ensure_synthetic_benchmark(root: Path | None = None, seed: int = 0, split_name: str = "synthetic") -> Path:
    """The default benchmark for ``seed`` and class set ``split_name`` under ``root`` (default
    $DETECTRON2_DATASETS), generated if missing."""
    if root is None:
        from .datasets.register_zs3_sem_seg import datasets_root

        root = datasets_root()
    return generate_benchmark(Path(root), SyntheticBenchmarkConfig(seed=seed, split_name=split_name))
