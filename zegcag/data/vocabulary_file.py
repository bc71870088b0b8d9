"""Class vocabularies given by the user: a text file of class names, or a preset (split / dataset name).

File format (UTF-8, a leading BOM is accepted): one class per line; synonyms of one class on the same
line separated by commas (``"person, human"``, kept as one class name written ``"a, b"``); blank lines
and lines whose first non-blank character is ``#`` are skipped; spaces around names are stripped.
Two lines naming the same class (compared ignoring case and repeated spaces) are an error, because the
model could not tell them apart. Synonyms may repeat across lines (ADE20k-Full does: "screen").
"""
from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

__all__ = ["VocabularyFileError", "available_presets", "parse_vocabulary", "preset_vocabulary", "read_vocabulary_file"]


class VocabularyFileError(ValueError):
    """A vocabulary file that cannot be used; the message names the file, the line and the fix."""


def _normalize_line(text: str, source: str, line_no: int) -> str:
    """``" a ,b "`` -> ``"a, b"``; an empty synonym (``"a,,b"``, ``"a,"``) is an error naming the line."""
    synonyms = [s.strip() for s in text.split(",")]
    if not all(synonyms):
        raise VocabularyFileError(
            f"{source} line {line_no}: {text.strip()!r} has an empty synonym; separate synonyms by ', ' "
            "and do not end a line with a comma"
        )
    return ", ".join(" ".join(s.split()) for s in synonyms)


def _class_key(name: str) -> str:
    """Identity used for duplicate detection: case-folded, spaces collapsed."""
    return " ".join(name.casefold().split())


def parse_vocabulary(lines: Sequence[str], source: str = "<vocabulary>") -> list[str]:
    """Class names from the lines of a vocabulary file (see the module docstring); errors name ``source``."""
    names: list[str] = []
    lines_of: dict[str, list[int]] = defaultdict(list)
    for line_no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        name = _normalize_line(text, source, line_no)
        if not lines_of[_class_key(name)]:
            names.append(name)
        lines_of[_class_key(name)].append(line_no)
    duplicates = [(key, nums) for key, nums in lines_of.items() if len(nums) > 1]
    if duplicates:
        listed = "; ".join(f"{key!r} on lines {', '.join(map(str, nums))}" for key, nums in duplicates)
        raise VocabularyFileError(f"{source} names the same class more than once: {listed}. Keep one line per "
                                  "class (put synonyms on one line: 'a, b')")
    if not names:
        raise VocabularyFileError(f"{source} holds no class name, only blank lines and '#' comments; write one "
                                  "class name per line")
    return names


def read_vocabulary_file(path: str | os.PathLike) -> list[str]:
    """The class names of a UTF-8 vocabulary file, in file order (K names)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file not found: {path}")
    data = path.read_bytes()
    if not data.strip():
        raise VocabularyFileError(f"vocabulary file is empty: {path}; write one class name per line")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = []
    for line_no, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise VocabularyFileError(
                f"{path} line {line_no} is not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}): "
                f"{raw!r}; save the file with UTF-8 encoding"
            ) from None
    return parse_vocabulary(lines, str(path))


def available_presets() -> list[str]:
    """Names accepted by ``preset_vocabulary``: the shipped splits and the registered zero-shot datasets."""
    from .datasets.splits import available_splits
    from .protocol import zs3_dataset_names

    return sorted(set(available_splits()) | set(zs3_dataset_names()))


def preset_vocabulary(name: str) -> list[str]:
    """The class names of a shipped split (``coco_stuff_171``) or of a registered dataset (``zs3_synthetic_val``)."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from .datasets.splits import available_splits, load_split

    if name in available_splits():
        return list(load_split(name).class_names)
    if name in DatasetCatalog.list() and MetadataCatalog.get(name).get("stuff_classes"):
        return list(MetadataCatalog.get(name).stuff_classes)
    raise ValueError(f"unknown vocabulary preset {name!r}; presets: {available_presets()}")
