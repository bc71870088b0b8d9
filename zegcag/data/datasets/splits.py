"""Seen/unseen class splits shipped as package data (``zegcag/data/splits/<name>.json``).

A split file is the only place a benchmark's class list and unseen ids are written down:
``{"classes": [names...], "unseen": [ids...], "ignore_label": 255, "description": "..."}``.
Seen ids are every class id that is not unseen.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

SPLITS_DIR = Path(__file__).resolve().parent.parent / "splits"


@dataclass(frozen=True)
class ZS3Split:
    """Class names and the seen/unseen partition of one benchmark (ids index ``class_names``)."""

    name: str
    class_names: tuple[str, ...]
    seen: tuple[int, ...]
    unseen: tuple[int, ...]
    ignore_label: int = 255

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def with_unseen(self, unseen_names: Sequence[str]) -> "ZS3Split":
        """The same classes with another unseen list, given by class name."""
        unknown = [n for n in unseen_names if n not in self.class_names]
        if unknown:
            raise ValueError(
                f"unseen class names not in split '{self.name}': {unknown}; "
                f"known classes: {list(self.class_names)}"
            )
        unseen = sorted({self.class_names.index(n) for n in unseen_names})
        return make_split(self.name, self.class_names, unseen, self.ignore_label)


def make_split(
    name: str, class_names: Sequence[str], unseen: Sequence[int], ignore_label: int = 255
) -> ZS3Split:
    """Validate and build a split: unseen ids in range, no duplicates, at least one seen and one unseen."""
    class_names = tuple(class_names)
    if len(set(class_names)) != len(class_names):
        dup = sorted({n for n in class_names if class_names.count(n) > 1})
        raise ValueError(f"split '{name}' lists duplicate class names: {dup}")
    bad = [i for i in unseen if not 0 <= int(i) < len(class_names)]
    if bad:
        raise ValueError(f"split '{name}': unseen ids {bad} outside 0..{len(class_names) - 1}")
    unseen = tuple(sorted(int(i) for i in set(unseen)))
    if not unseen:
        raise ValueError(f"split '{name}': the unseen list is empty")
    seen = tuple(i for i in range(len(class_names)) if i not in unseen)
    if not seen:
        raise ValueError(f"split '{name}': every class is unseen")
    return ZS3Split(name, class_names, seen, unseen, int(ignore_label))


def available_splits() -> list[str]:
    return sorted(p.stem for p in SPLITS_DIR.glob("*.json"))


@lru_cache(maxsize=None)
def load_split(name: str) -> ZS3Split:
    """Read ``zegcag/data/splits/<name>.json``."""
    path = SPLITS_DIR / f"{name}.json"
    if not path.is_file():
        raise KeyError(f"no split named '{name}' (looked for {path}); available: {available_splits()}")
    spec = json.loads(path.read_text())
    return make_split(name, spec["classes"], spec["unseen"], spec.get("ignore_label", 255))
