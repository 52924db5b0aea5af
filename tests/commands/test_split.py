"""`build --split SIZE`: sizes as people write them, and a warning for a size FAT32 refuses."""

from __future__ import annotations

import pytest

from packager.bundle.layout import FAT32_MAX
from packager.commands.build import parse_split, split_note
from packager.errors import InputError

SIZES = [
    ("fat32", FAT32_MAX),
    ("FAT32", FAT32_MAX),
    ("700M", 700 * 1024**2),
    ("4G", 4 * 1024**3),
    ("1.5g", int(1.5 * 1024**3)),
    ("2GB", 2 * 1024**3),
    ("1048576", 1024**2),
    (None, None),
]


@pytest.mark.parametrize(("text", "size"), SIZES)
def test_sizes_as_people_write_them(text: str | None, size: int | None) -> None:
    assert parse_split(text) == size


@pytest.mark.parametrize("text", ["", "x", "4Q", "1K", "100", "-5G", "nanM"])
def test_a_size_that_is_not_one_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError):
        parse_split(text)


NOTES = [
    # (part size, warned)
    (FAT32_MAX, False),
    (FAT32_MAX + 1, True),  # --split 4G: one byte over
    (FAT32_MAX + 1024**2, True),
    (8 * 1024**3, False),  # clearly not meant for FAT32
    (700 * 1024**2, False),
    (None, False),
]


@pytest.mark.parametrize(("size", "warned"), NOTES)
def test_parts_just_over_fat32s_largest_file_are_warned_about(
    size: int | None, warned: bool
) -> None:
    note = split_note(size)
    assert (note is not None) == warned
    if note:
        assert "--split fat32" in note
