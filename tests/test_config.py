"""Config keys: every key zegcag adds is documented and read somewhere; every YAML in configs/ loads."""
from __future__ import annotations

import re

import pytest
from detectron2.config import get_cfg
from detectron2.projects.deeplab import add_deeplab_config

from zegcag_testing import REPO, make_cfg
from zegcag import add_zegcag_config


def added_keys() -> list[str]:
    base = get_cfg()
    add_deeplab_config(base)
    cfg = base.clone()
    add_zegcag_config(cfg)

    def flatten(node, prefix=""):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from flatten(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    before = set(flatten(base))
    return sorted(set(flatten(cfg)) - before)


def test_every_added_key_has_a_comment():
    source = (REPO / "zegcag/config.py").read_text().splitlines()
    for key in added_keys():
        line = next(i for i, l in enumerate(source) if re.search(rf"cfg\.{re.escape(key)}\s*=", l))
        assert source[line - 1].strip().startswith("#"), f"{key} has no comment line above its definition"


def test_no_dead_keys():
    code = "\n".join(p.read_text() for p in [*(REPO / "zegcag").rglob("*.py"), *(REPO / "tools").glob("*.py")]
                     if p.name != "config.py")
    for key in added_keys():
        parent, leaf = key.rsplit(".", 1)
        assert f"{parent.split('.')[-1]}.{leaf}" in code, f"config key {key} is read nowhere"


@pytest.mark.parametrize("path", sorted(p.relative_to(REPO).as_posix() for p in (REPO / "configs").glob("*.yaml")))
def test_config_file_loads(path):
    cfg = make_cfg(path)
    assert cfg.MODEL.META_ARCHITECTURE
