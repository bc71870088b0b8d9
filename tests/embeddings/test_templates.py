from __future__ import annotations

import json

import pytest

from zegcag.embeddings.templates import available_template_sets, get_templates


def test_builtin_sets_have_expected_sizes():
    assert get_templates("single") == ("A photo of a {} in the scene",)
    assert len(get_templates("imagenet_select")) == 8
    assert len(get_templates("imagenet")) == 80
    assert len(get_templates("image_branch")) == 32
    assert {"single", "imagenet_select", "imagenet", "image_branch"} <= set(available_template_sets())


def test_imagenet_select_is_the_zegformer_list():
    expected = [
        "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
        "a {} in a video game.", "art of the {}.", "a photo of the small {}.", "A photo of a {} in the scene",
    ]
    assert list(get_templates("imagenet_select")) == expected


def test_imagenet_templates_match_open_clip():
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    assert list(get_templates("imagenet")) == [t("{}") for t in OPENAI_IMAGENET_TEMPLATES]


def test_image_branch_templates_cover_every_combination():
    templates = get_templates("image_branch")
    assert len(set(templates)) == 32
    assert sum(t.startswith("This is a masked photo of") for t in templates) == 16
    assert sum(t.startswith("This is a cropped photo of") for t in templates) == 16
    assert sum(t.endswith("{} in the scene") for t in templates) == 16
    for size in ("small", "medium", "large"):
        assert sum(f" {size} {{}}" in t for t in templates) == 8
    assert "This is a cropped photo of the large {} in the scene" in templates
    assert "This is a masked photo of a {}" in templates


@pytest.mark.parametrize("name", ["single", "imagenet_select", "imagenet", "image_branch"])
def test_each_template_places_the_class_name_once(name):
    for template in get_templates(name):
        text = template.format("zebra crossing")
        assert text.count("zebra crossing") == 1 and "{" not in text


def test_unknown_set_lists_the_known_ones():
    with pytest.raises(KeyError) as info:
        get_templates("imagenet_selected")
    message = str(info.value)
    assert "imagenet_selected" in message and "imagenet_select" in message and "image_branch" in message


def test_json_file_as_template_set(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(["a {} here", "there is a {}"]))
    assert get_templates(str(path)) == ("a {} here", "there is a {}")

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(["no placeholder", "a {} and {}"]))
    with pytest.raises(ValueError, match="no placeholder"):
        get_templates(str(bad))
    with pytest.raises(FileNotFoundError, match="absent.json"):
        get_templates(str(tmp_path / "absent.json"))
