"""Vocabulary files and presets: format, normalisation and every documented error."""
from __future__ import annotations

import pytest

from zegcag.data.datasets import load_split
from zegcag.data.vocabulary_file import (
    VocabularyFileError,
    available_presets,
    parse_vocabulary,
    preset_vocabulary,
    read_vocabulary_file,
)


def write(tmp_path, content: bytes | str, name: str = "vocab.txt"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def test_names_in_file_order_comments_and_blank_lines_skipped(tmp_path):
    path = write(tmp_path, "# my classes\n\ncat\n  # indented comment\ndog\n\n\nhorse\n")
    assert read_vocabulary_file(path) == ["cat", "dog", "horse"]


def test_spaces_stripped_and_synonyms_kept_as_one_class(tmp_path):
    path = write(tmp_path, "  cat \t\nperson,human\nsofa ,  couch  , settee \ntv   monitor\r\n")
    assert read_vocabulary_file(path) == ["cat", "person, human", "sofa, couch, settee", "tv monitor"]


def test_crlf_and_bom_accepted(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbfcat\r\ndog\r\n")
    assert read_vocabulary_file(path) == ["cat", "dog"]


def test_unicode_names(tmp_path):
    path = write(tmp_path, "café\nnaïve bayes, 猫\n")
    assert read_vocabulary_file(path) == ["café", "naïve bayes, 猫"]


def test_one_class(tmp_path):
    assert read_vocabulary_file(write(tmp_path, "sky")) == ["sky"]


@pytest.mark.parametrize("content", ["", "\n\n", "   \n\t\n"])
def test_empty_file(tmp_path, content):
    with pytest.raises(VocabularyFileError, match="vocabulary file is empty: .*vocab.txt"):
        read_vocabulary_file(write(tmp_path, content))


def test_only_comments(tmp_path):
    with pytest.raises(VocabularyFileError, match="vocab.txt holds no class name"):
        read_vocabulary_file(write(tmp_path, "# cat\n\n# dog\n"))


def test_duplicates_named_with_their_lines(tmp_path):
    path = write(tmp_path, "cat\ndog\nCat\nhorse\ndog\n")
    with pytest.raises(VocabularyFileError) as err:
        read_vocabulary_file(path)
    message = str(err.value)
    assert "'cat' on lines 1, 3" in message and "'dog' on lines 2, 5" in message
    assert "horse" not in message


def test_repeated_synonym_across_classes_is_allowed(tmp_path):
    # ADE20k-Full has "screen" in several classes; only whole-class duplicates are errors
    path = write(tmp_path, "screen, silver screen\nscreen, crt screen\n")
    assert read_vocabulary_file(path) == ["screen, silver screen", "screen, crt screen"]


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = write(tmp_path, b"cat\ndog\ncaf\xe9\n")
    with pytest.raises(VocabularyFileError, match=r"vocab.txt line 3 is not UTF-8 \(byte 0xe9 at column 4\)"):
        read_vocabulary_file(path)


@pytest.mark.parametrize("line", ["cat,", "cat,,dog", ", cat"])
def test_empty_synonym_names_the_line(tmp_path, line):
    with pytest.raises(VocabularyFileError, match="line 2: .*empty synonym"):
        read_vocabulary_file(write(tmp_path, f"dog\n{line}\n"))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocabulary file not found: .*nope.txt"):
        read_vocabulary_file(tmp_path / "nope.txt")


def test_847_ade_names_round_trip(tmp_path):
    names = list(load_split("ade_full_847").class_names)
    path = write(tmp_path, "\n".join(names) + "\n")
    read = read_vocabulary_file(path)
    assert len(read) == 847
    # the split writes one synonym with a trailing space ("c p u "); the file reader strips synonyms
    changed = [(a, b) for a, b in zip(names, read) if a != b]
    assert changed == [(n, n.replace("c p u ,", "c p u,")) for n in names if "c p u ," in n]


def test_parse_names_the_source():
    with pytest.raises(VocabularyFileError, match="<pasted> holds no class name"):
        parse_vocabulary(["# nothing"], source="<pasted>")


def test_presets_split_and_registered_dataset():
    assert preset_vocabulary("coco_stuff_171") == list(load_split("coco_stuff_171").class_names)
    assert len(preset_vocabulary("coco_stuff_171")) == 171
    assert preset_vocabulary("zs3_synthetic_val") == list(load_split("synthetic").class_names)
    assert {"voc", "ade_full_847", "zs3_synthetic_val"} <= set(available_presets())


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ValueError, match="unknown vocabulary preset 'no_such'; presets: .*coco_stuff_171"):
        preset_vocabulary("no_such")
