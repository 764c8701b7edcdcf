"""``images._end``: where an image really ends, so an appended payload is never sent."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from langchain_afarensis_vision._sources import opening
from langchain_afarensis_vision._sources.opening import open_image
from langchain_afarensis_vision.images import prepare_image
from langchain_afarensis_vision.images._end import image_end
from tests import hostile_images as hostile
from tests._support import TEST_IMAGES


def _zip(comment: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.js", "alert(document.cookie)")
        archive.comment = comment
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name", ["hopper.png", "hopper.jpg", "hopper.gif", "hopper.webp", "flower.jpg", "iss634.gif"]
)
def test_image_end_of_real_files_is_their_length(name: str) -> None:
    data = (TEST_IMAGES / name).read_bytes()
    with opening.mapped_errors():
        fmt = open_image(data).format or ""
    assert image_end(fmt, data) == len(data)


@pytest.mark.parametrize(
    ("fmt", "image", "payload"),
    [
        pytest.param("GIF", hostile.small_gif, b"<script>alert(1)</script>;", id="gif+script;"),
        pytest.param("JPEG", hostile.small_jpeg, _zip(b"\xff\xd9"), id="jpeg+zip-ending-ffd9"),
        pytest.param(
            "PNG", hostile.small_png, _zip(hostile.png_chunk(b"IEND", b"")), id="png+zip-iend"
        ),
        pytest.param("WEBP", lambda: (TEST_IMAGES / "hopper.webp").read_bytes(), b"PK", id="webp"),
    ],
)
def test_image_end_finds_appended_payloads(fmt: str, image: Any, payload: bytes) -> None:
    data = image()
    assert image_end(fmt, data + payload) == len(data)


def test_prepare_image_re_encodes_what_carries_a_payload() -> None:
    for data, payload in (
        (hostile.small_gif(), b"<script>alert(1)</script>;"),
        (hostile.small_jpeg(), _zip(b"\xff\xd9")),
        (hostile.small_png(), _zip(hostile.png_chunk(b"IEND", b""))),
    ):
        assert not prepare_image(data).changed  # the plain file goes as it is
        prepared = prepare_image(data + payload)
        assert prepared.changed
        assert b"payload.js" not in prepared.data
        assert b"script" not in prepared.data


@pytest.mark.parametrize(
    "broken",
    [b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"GIF89a\x01\x00"],
    ids=["png", "jpeg", "gif"],
)
def test_image_end_of_truncated_containers_is_none(broken: bytes) -> None:
    fmt = {b"\x89": "PNG", b"\xff": "JPEG", b"G": "GIF"}[broken[:1]]
    assert image_end(fmt, broken) is None
