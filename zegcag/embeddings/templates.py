"""Prompt-template sets for text encoders: each template holds one ``{}`` for the class name.

Sets (see /work/shared/specs/zegformer.md §1):
- ``single``: "A photo of a {} in the scene" (ZegFormer's VOC setting).
- ``imagenet_select``: 8 of the CLIP ImageNet templates plus ``single`` (ZegFormer's COCO/ADE setting).
- ``imagenet``: the 80 CLIP ImageNet prompt templates.
- ``image_branch``: 32 templates describing a masked or cropped sub-image, for the text side of
  ZegFormer's CLIP image branch; composed in ``_image_branch_templates``.
The first three live in ``templates/<name>.json`` (package data). A path to a JSON list of
template strings is accepted as a set name too.
"""
from __future__ import annotations

import itertools
import json
from functools import lru_cache
from pathlib import Path

__all__ = ["TEMPLATES_DIR", "available_template_sets", "check_templates", "get_templates"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _image_branch_templates() -> tuple[str, ...]:
    """2 views x 2 articles x 4 sizes x 2 endings = 32, e.g. "This is a cropped photo of the large {} in the scene"."""
    views = ("masked", "cropped")
    articles = ("a", "the")
    sizes = ("", "small ", "medium ", "large ")
    endings = ("", " in the scene")
    return tuple(
        f"This is a {view} photo of {article} {size}{{}}{ending}"
        for view, article, size, ending in itertools.product(views, articles, sizes, endings)
    )


_COMPOSED = {"image_branch": _image_branch_templates}


def available_template_sets() -> list[str]:
    """Names accepted by ``get_templates`` (besides JSON file paths), sorted."""
    return sorted({p.stem for p in TEMPLATES_DIR.glob("*.json")} | set(_COMPOSED))


def check_templates(templates: object, source: str) -> tuple[str, ...]:
    """A non-empty list of distinct strings, each with exactly one ``{}`` -> tuple; else ValueError."""
    if not isinstance(templates, list) or not templates or not all(isinstance(t, str) for t in templates):
        raise ValueError(f"template set {source} must be a non-empty list of strings, got {templates!r}")
    bad = [t for t in templates if t.count("{}") != 1 or t.count("{") != 1 or t.count("}") != 1]
    if bad:
        raise ValueError(f"template set {source}: each template needs exactly one '{{}}' placeholder, got {bad}")
    if len(set(templates)) != len(templates):
        raise ValueError(f"template set {source} repeats a template")
    return tuple(templates)


def get_templates(name: str) -> tuple[str, ...]:
    """Template strings of the set ``name`` (or of a JSON file path); unknown name -> KeyError."""
    if name in _COMPOSED:
        return _COMPOSED[name]()
    if name in available_template_sets():
        return _load_shipped(name)
    if name.endswith(".json"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"prompt template file not found: {path}")
        return _read(path)
    raise KeyError(
        f"unknown prompt template set {name!r} (MODEL.CLASS_EMBED.TEMPLATES); known sets: "
        f"{available_template_sets()}, or a path to a .json list of templates"
    )


def _read(path: Path) -> tuple[str, ...]:
    try:
        with open(path, encoding="utf-8") as f:
            templates = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"prompt template file {path} is not valid JSON: {e}") from e
    return check_templates(templates, str(path))


@lru_cache(maxsize=None)
def _load_shipped(name: str) -> tuple[str, ...]:
    return _read(TEMPLATES_DIR / f"{name}.json")
