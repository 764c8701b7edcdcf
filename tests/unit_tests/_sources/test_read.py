"""Reading sources: bytes, paths, file objects and data URLs, the opener, header facts."""

from __future__ import annotations

import base64
import functools
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from langchain_afarensis_vision._sources import opening, read
from langchain_afarensis_vision._sources.opening import check_pixels, open_image, read_image_size
from langchain_afarensis_vision._sources.read import MAX_INPUT_BYTES, read_source
from langchain_afarensis_vision.errors import InvalidImageError, InvalidRequestError
from langchain_afarensis_vision.images import prepare_image
from tests import hostile_images as hostile
from tests._support import TEST_IMAGES, raised_beside_fifo

# -- read_source ------------------------------------------------------------------------------


def test_read_source_takes_every_byte_source(tmp_path: Path) -> None:
    data = (TEST_IMAGES / "hopper.png").read_bytes()
    path = tmp_path / "hopper.png"
    path.write_bytes(data)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    for source in (data, bytearray(data), memoryview(data), str(path), path, url):
        assert read_source(source) == data
    with path.open("rb") as file:
        assert read_source(file) == data
    assert read_source(io.BytesIO(data)) == data


def test_read_source_refuses_text_files_and_other_types(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("not an image")
    with path.open() as text, pytest.raises(TypeError, match="binary file object"):
        read_source(text)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a path, bytes, a binary file object"):
        read_source(42)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        read_source(tmp_path / "missing.png")


def test_prepare_image_takes_binary_file_objects_of_every_kind(tmp_path: Path) -> None:
    data = (TEST_IMAGES / "hopper.jpg").read_bytes()
    path = tmp_path / "hopper.jpg"
    path.write_bytes(data)
    expected = prepare_image(data)
    with path.open("rb") as buffered, open(path, "rb", buffering=0) as raw:
        assert prepare_image(buffered) == expected
        assert prepare_image(raw) == expected
    with tempfile.SpooledTemporaryFile() as spooled:
        spooled.write(data)
        spooled.seek(0)
        assert prepare_image(spooled) == expected  # type: ignore[arg-type]


def test_a_pipe_with_short_reads_is_read_to_its_end() -> None:
    """A raw pipe returns what is there on each read: the image must not come out truncated."""
    data = (TEST_IMAGES / "hopper.png").read_bytes()
    reader, writer = os.pipe()

    def feed() -> None:
        with open(writer, "wb", buffering=0) as out:
            for start in range(0, len(data), 1000):
                out.write(data[start : start + 1000])

    thread = threading.Thread(target=feed)
    thread.start()
    with open(reader, "rb", buffering=0) as pipe:
        assert read_source(pipe) == data
    thread.join()


def test_a_large_file_object_is_refused_by_its_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with path.open("wb") as file:
        file.truncate(MAX_INPUT_BYTES + 10)  # sparse
    with path.open("rb") as file, pytest.raises(InvalidImageError) as raised:
        read_source(file)
    assert raised.value.code == "image_too_large"
    assert "file object holds more than" in str(raised.value)


def test_a_text_mode_file_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "hopper.jpg"
    path.write_bytes((TEST_IMAGES / "hopper.jpg").read_bytes())
    with path.open() as text, pytest.raises(TypeError, match=r"open\(path, 'rb'\)"):
        prepare_image(text)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text mode"):
        prepare_image(io.StringIO("abc"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["https://example.com/holiday.jpg", "http://127.0.0.1/a.png", "ftp://host/a.png"]
)
def test_prepare_image_given_a_url_says_what_to_do(url: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"not \w+: URLs.*the API fetches it"):
        prepare_image(url)


def test_prepare_image_given_a_missing_path_is_still_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        prepare_image(str(tmp_path / "holiday.jpg"))


def test_a_fifo_path_is_refused_without_blocking(tmp_path: Path) -> None:
    """Opening a FIFO for reading would wait for a writer forever: it is refused unread."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for source in (fifo, str(fifo)):
        for call in (read_source, prepare_image):
            error = raised_beside_fifo(fifo, functools.partial(call, source))
            assert isinstance(error, InvalidImageError), repr(error)
            assert "not a regular file" in str(error)
    error = raised_beside_fifo(tmp_path, functools.partial(read_source, tmp_path))
    assert isinstance(error, InvalidImageError), repr(error)  # a directory, too


def test_read_source_caps_file_objects() -> None:
    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            buffer[:] = b"\0" * len(buffer)
            return len(buffer)

    with pytest.raises(InvalidImageError) as caught:
        read_source(io.BufferedReader(Endless()))
    assert caught.value.code == "image_too_large"
    assert f"{MAX_INPUT_BYTES:,}" in str(caught.value)


# -- the opener and header facts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        pytest.param(b"%PDF-1.7\n", "a PDF document", id="pdf"),
        pytest.param(b"%!PS-Adobe-3.0 EPSF-3.0\n", "PostScript/EPS", id="eps"),
        pytest.param(b"\xef\xbb\xbf  <svg xmlns='x'/>", "SVG text", id="svg-with-bom"),
        pytest.param(b"PK\x03\x04rest", "a ZIP archive", id="zip"),
        pytest.param(b"\0\0\0\x18ftypheic" + b"\0" * 16, "HEIC/HEIF", id="heic"),
        pytest.param(b"", "nothing (0 bytes)", id="empty"),
    ],
)
def test_open_image_names_what_it_refuses(data: bytes, needle: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        open_image(data)
    assert caught.value.code == "invalid_image_format"
    assert needle in str(caught.value)


def test_open_image_reads_the_header_only() -> None:
    truncated = hostile.photo_jpeg()[:2000]
    with opening.mapped_errors():
        image = open_image(truncated)
    assert (image.format, image.size) == ("JPEG", (640, 480))
    assert "EPS" not in opening.allowed_formats()


def test_every_format_pillow_reads_is_opened_but_the_unsafe_ones() -> None:
    allowed = opening.allowed_formats()
    assert {"SGI", "XBM", "SUN", "PCX", "QOI", "PSD"} <= set(allowed)
    assert not set(opening._UNSAFE) & set(allowed)  # EPS (Ghostscript), WMF, ICNS, stubs...
    assert allowed[:4] == ("PNG", "JPEG", "WEBP", "GIF")
    assert allowed[-1] == "TGA"  # no magic number: tried last


def test_check_pixels_and_frames() -> None:
    check_pixels((10_000, 10_000))
    with pytest.raises(InvalidImageError) as caught:
        check_pixels((10_001, 10_000))
    assert caught.value.code == "image_too_large"
    with opening.mapped_errors():
        animated = open_image((TEST_IMAGES / "iss634.gif").read_bytes())
    with pytest.raises(InvalidImageError) as caught:
        opening.check_frames(animated, first_frame=False)
    assert caught.value.code == "animated_gif_not_supported"
    animated.seek(2)
    opening.check_frames(animated, first_frame=True)
    assert animated.tell() == 0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_and_oriented_size(orientation: int) -> None:
    exif = Image.Exif()
    exif[opening.ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20)).save(buffer, "JPEG", exif=exif)
    with opening.mapped_errors():
        image = open_image(buffer.getvalue())
    assert opening.orientation(image) == orientation
    expected = (20, 40) if orientation >= 5 else (40, 20)
    assert read_image_size(buffer.getvalue()) == expected


# -- read_image_size -------------------------------------------------------------------------


def test_read_image_size_reads_headers_only() -> None:
    truncated = hostile.photo_jpeg()[:2000]  # a full decode would fail
    assert read_image_size(truncated) == (640, 480)
    assert read_image_size(hostile.camera_jpeg()) == (4032, 3024)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(b"", "invalid_image_format", id="empty"),
        pytest.param(
            b"<svg xmlns='http://www.w3.org/2000/svg'/>", "invalid_image_format", id="svg"
        ),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "invalid_image", id="broken_png"),
    ],
)
def test_read_image_size_refusals(data: bytes, code: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        read_image_size(data)
    assert caught.value.code == code


def test_read_image_size_reads_a_bomb_the_api_accepts_past_pillows_guard() -> None:
    # Any valid image up to 20 MB in the API's formats is accepted (and billed by its size).
    screen = hostile.case("gif_bomb_logical_screen").data()  # a 32 x 32 frame on a huge screen
    assert read_image_size(screen) == (65_535, 65_535)


def test_read_image_size_refuses_a_header_its_data_cannot_hold() -> None:
    with pytest.raises(InvalidImageError) as caught:
        read_image_size(hostile.raw_png(100_000, 100_000))  # 69 bytes: truncated
    assert caught.value.code == "invalid_image"


# -- base64 and data URLs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda data: base64.b64encode(data).decode(),
        lambda data: base64.encodebytes(data).decode(),  # MIME: a line break every 76 characters
        lambda data: " ".join(
            base64.b64encode(data).decode()[i : i + 10] for i in range(0, 99, 10)
        ),
    ],
    ids=["one line", "mime lines", "spaces"],
)
def test_decode_base64_takes_one_line_or_broken_lines(encode: Any) -> None:
    data = bytes(range(256)) * 3
    text = encode(data)
    expected = data if " " not in text else base64.b64decode(text.replace(" ", ""))
    assert read.decode_base64(text) == expected
    assert read.decode_data_url("data:image/png;base64," + text) == expected


@pytest.mark.parametrize("text", ["abc$", "ab=c", "a", "é123"])
def test_decode_base64_refuses_what_is_not_base64(text: str) -> None:
    with pytest.raises(InvalidImageError, match="not valid base64") as caught:
        read.decode_base64(text)
    assert caught.value.code == "invalid_image"


def test_decode_data_url_percent_encoded_and_malformed() -> None:
    assert read.decode_data_url("data:image/svg+xml,%3Csvg%3E") == b"<svg>"
    with pytest.raises(InvalidImageError, match="no ','"):
        read.decode_data_url("data:image/png;base64")
