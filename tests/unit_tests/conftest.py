"""Fixtures the unit tests of the tool's policy share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

PNG_SIZE = (64, 48)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """allowed/, allowed2/ and outside/, with the traps an agent might name."""
    allowed, allowed2, outside = (tmp_path / n for n in ("allowed", "allowed2", "outside"))
    for directory in (allowed / "sub", allowed / "dir", allowed2, outside):
        directory.mkdir(parents=True)
    Image.new("RGB", PNG_SIZE, "red").save(allowed / "chart.png")
    Image.new("RGB", PNG_SIZE, "blue").save(allowed / "sub" / "nested.png")
    Image.new("RGB", PNG_SIZE, "green").save(allowed2 / "other.png")
    Image.new("RGB", PNG_SIZE, "black").save(outside / "secret.png")
    (allowed / "link_out.png").symlink_to(outside / "secret.png")
    (allowed / "dir_out").symlink_to(outside, target_is_directory=True)
    (allowed / "link_in.png").symlink_to(allowed / "chart.png")
    (allowed / "loop").symlink_to(allowed / "loop")
    os.mkfifo(allowed / "fifo.png")
    with open(allowed / "big.png", "wb") as file:
        file.truncate(10_000)  # sparse: large without writing it
    return tmp_path


def dirs(tree: Path) -> list[Path]:
    return [tree / "allowed", tree / "allowed2"]
