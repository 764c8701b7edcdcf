"""prepare_image and read_image_size: real samples, a hostile corpus, every input kind, sizes."""

from __future__ import annotations

import base64
import dataclasses
import io
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image, ImageFile, ImageFilter, ImageOps

from langchain_afarensis_vision._api.contract import (
    ACCEPTED_MIME_TYPES,
    MAX_IMAGE_BYTES,
    Detail,
    effective_size,
    estimate_image_tokens,
)
from langchain_afarensis_vision._sources import opening, read
from langchain_afarensis_vision._sources.opening import read_image_size
from langchain_afarensis_vision.errors import InvalidImageError
from langchain_afarensis_vision.images import (
    FACTS,
    PreparedImage,
    _preparation,
    clear_cache,
    prepare_image,
    refused_facts,
    unknown_facts,
)
from tests import hostile_images as hostile
from tests._support import TEST_IMAGES

PNG, JPEG, GIF, WEBP = "image/png", "image/jpeg", "image/gif", "image/webp"
_FORMAT_OF = {PNG: "PNG", JPEG: "JPEG", GIF: "GIF", WEBP: "WEBP"}


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def assert_sendable(prepared: PreparedImage, source: bytes | None = None) -> Image.Image:
    """What holds for every prepared image; returns the decoded output."""
    assert prepared.mime_type in ACCEPTED_MIME_TYPES
    assert 0 < len(prepared.data) <= MAX_IMAGE_BYTES
    decoded = Image.open(io.BytesIO(prepared.data))
    assert decoded.format == _FORMAT_OF[prepared.mime_type]
    assert decoded.size == prepared.size == (prepared.width, prepared.height)
    decoded.load()
    assert prepared.size == effective_size(*prepared.source_size, prepared.detail)
    assert prepared.tokens == estimate_image_tokens(*prepared.source_size, prepared.detail)
    assert prepared.tokens == estimate_image_tokens(*prepared.size, prepared.detail)
    assert not getattr(decoded, "is_animated", False)
    if source is not None:
        assert prepared.source_bytes == len(source)
        assert (prepared.data == source) is not prepared.changed
    if prepared.changed:
        assert not decoded.getexif(), "re-encoded images carry no EXIF"
    text = repr(prepared)
    assert len(text) < 200
    assert base64.b64encode(prepared.data[:24]).decode() not in text
    assert prepared.data_url.startswith(f"data:{prepared.mime_type};base64,")
    assert base64.b64decode(prepared.data_url.split(",", 1)[1]) == prepared.data
    return decoded


def assert_colours_close(
    got: Mapping[str, Sequence[int]], want: Mapping[str, Sequence[int]], tolerance: int = 40
) -> None:
    assert got.keys() == want.keys()
    for key, colour in want.items():
        assert all(abs(g - w) <= tolerance for g, w in zip(got[key], colour, strict=True)), key


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# The sample images (tests/data/images)
# --------------------------------------------------------------------------------------------

_SAMPLES = [
    ("flower.jpg", JPEG, (480, 360), False),
    ("flower.webp", WEBP, (480, 360), False),
    ("flower2.jpg", JPEG, (300, 225), False),
    ("hopper.jpg", JPEG, (128, 128), False),
    ("hopper.png", PNG, (128, 128), False),
    ("hopper.webp", WEBP, (128, 128), False),
    ("hopper.gif", GIF, (128, 128), False),
    ("hopper.tif", PNG, (128, 128), True),
    ("hopper.bmp", PNG, (128, 128), True),
    ("hopper_orientation_6.jpg", JPEG, (128, 128), True),
    ("pil_sample_cmyk.jpg", JPEG, (100, 100), True),
]


@pytest.mark.parametrize(
    ("name", "mime", "size", "changed"), [pytest.param(*row, id=row[0]) for row in _SAMPLES]
)
@pytest.mark.parametrize("detail", ["auto", "low"])
def test_sample_images(
    name: str, mime: str, size: tuple[int, int], changed: bool, detail: Detail
) -> None:
    path = TEST_IMAGES / name
    prepared = prepare_image(path, detail)
    decoded = assert_sendable(prepared, path.read_bytes())
    assert (prepared.mime_type, prepared.size, prepared.changed) == (mime, size, changed)
    assert decoded.mode in {"L", "RGB", "RGBA", "P", "LA", "1"}
    assert read_image_size(path.read_bytes()) == prepared.source_size


def test_shared_conversions_name_their_source() -> None:
    assert prepare_image(TEST_IMAGES / "hopper.tif").format == "TIFF"
    assert prepare_image(TEST_IMAGES / "hopper.bmp").format == "BMP"
    cmyk = prepare_image(TEST_IMAGES / "pil_sample_cmyk.jpg")
    assert cmyk.format == "JPEG"
    assert Image.open(io.BytesIO(cmyk.data)).mode == "RGB"


def test_shared_animated_gif_refused_unless_first_frame() -> None:
    path = TEST_IMAGES / "iss634.gif"
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(path)
    assert caught.value.code == "animated_gif_not_supported"
    assert "first_frame" in str(caught.value)
    prepared = prepare_image(path, first_frame=True)
    assert_sendable(prepared, path.read_bytes())
    assert (prepared.mime_type, prepared.size, prepared.format) == (PNG, (245, 245), "GIF")
    first = Image.open(io.BytesIO(path.read_bytes())).convert("RGB")
    assert Image.open(io.BytesIO(prepared.data)).convert("RGB").tobytes() == first.tobytes()


def test_shared_orientation_6_is_applied() -> None:
    path = TEST_IMAGES / "hopper_orientation_6.jpg"
    stored = Image.open(io.BytesIO(path.read_bytes()))
    assert stored.getexif().get(ExifTags.Base.Orientation) == 6
    prepared = prepare_image(path)
    out = Image.open(io.BytesIO(prepared.data))
    assert out.size == stored.size[::-1]
    assert ExifTags.Base.Orientation not in out.getexif()
    upright = ImageOps.exif_transpose(stored).convert("RGB")
    assert _mean_abs_diff(out.convert("RGB"), upright) < 4
    assert _mean_abs_diff(out.convert("RGB"), stored.convert("RGB")) > 20  # it did rotate


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    pairs = zip(a.tobytes(), b.tobytes(), strict=True)
    return sum(abs(x - y) for x, y in pairs) / (a.size[0] * a.size[1] * 3)


# --------------------------------------------------------------------------------------------
# The hostile corpus
# --------------------------------------------------------------------------------------------


def test_corpus_is_big_enough() -> None:
    cases = hostile.corpus()
    assert len(cases) >= 30
    assert sum(c.code is not None for c in cases) >= 15


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in hostile.corpus()])
def test_hostile_corpus(case: hostile.Case) -> None:
    data = case.data()
    if case.code is not None:
        with pytest.raises(InvalidImageError) as caught:
            prepare_image(data, case.detail, first_frame=case.first_frame)
        assert caught.value.code == case.code, str(caught.value)
        assert case.message is None or case.message in str(caught.value)
        assert isinstance(caught.value, ValueError)
        return
    if case.unprepared:
        with pytest.warns(_preparation.UnpreparedImageWarning, match="sent as it is"):
            prepared = prepare_image(data, case.detail, first_frame=case.first_frame)
        assert prepared.data == data
    else:
        prepared = prepare_image(data, case.detail, first_frame=case.first_frame)
        assert_sendable(prepared, data)
    assert case.mime is None or prepared.mime_type == case.mime
    assert case.size is None or prepared.size == case.size
    assert case.changed is None or prepared.changed == case.changed
    for check in case.checks:
        check(prepared)


@pytest.mark.parametrize(
    "make", [hostile.case("gif_bomb_logical_screen").data, hostile.tiny_huge_webp]
)
def test_without_pillows_guard_a_bomb_the_api_takes_goes_as_it_is(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # a caller may have switched it off
    data = make()
    with pytest.warns(_preparation.UnpreparedImageWarning, match="sent as it is, unprepared"):
        prepared = prepare_image(data)
    assert (prepared.data, prepared.changed) == (data, False)


@pytest.mark.parametrize(
    "name",
    ["png_bomb_ihdr", "png_just_over_pixel_budget", "gif_bomb_frame_extent", "jpeg_bomb_sof"],
)
def test_without_pillows_guard_a_truncated_bomb_is_refused_undecoded(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    monkeypatch.setattr(ImageFile.ImageFile, "load", _never_decoded)
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(hostile.case(name).data())
    assert caught.value.code == "invalid_image"
    assert "image data is truncated" in str(caught.value)


def _never_decoded(image: Image.Image) -> None:
    raise AssertionError(f"{image.format} image of {image.size} decoded")


def test_without_pillows_guard_a_bomb_the_api_refuses_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(hostile.case("tiff_bomb").data())
    assert caught.value.code == "image_too_large"
    assert "the API does not take it as it is (TIFF" in str(caught.value)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(orientation: int) -> None:
    data = hostile.orientation_jpeg(orientation)
    stored = Image.open(io.BytesIO(data))
    assert read_image_size(data) == hostile.UPRIGHT_SIZE
    assert stored.size == (hostile.UPRIGHT_SIZE[::-1] if orientation >= 5 else hostile.UPRIGHT_SIZE)
    out = Image.open(io.BytesIO(prepare_image(data).data))
    reference = ImageOps.exif_transpose(stored)
    assert_colours_close(hostile.quadrant_colours(out), hostile.quadrant_colours(reference))


# --------------------------------------------------------------------------------------------
# Input kinds
# --------------------------------------------------------------------------------------------


def test_bytes_bytearray_memoryview_agree() -> None:
    data = (TEST_IMAGES / "hopper.bmp").read_bytes()
    results = [prepare_image(kind(data)) for kind in (bytes, bytearray, memoryview)]
    assert results[0] is results[1] is results[2]  # one cache entry: keyed by content


def test_path_input_str_and_pathlike(tmp_path: Path) -> None:
    png = hostile.small_png()
    path = tmp_path / "really_a_png.jpg"  # the extension lies: the bytes decide
    path.write_bytes(png)
    for source in (path, str(path)):
        clear_cache()
        prepared = prepare_image(source)
        assert (prepared.mime_type, prepared.changed, prepared.data) == (PNG, False, png)


def test_missing_path_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        prepare_image(tmp_path / "nope.png")


def test_data_url_declared_type_is_ignored() -> None:
    png = hostile.small_png()
    payload = base64.b64encode(png).decode()
    wrapped = "\n".join(payload[i : i + 76] for i in range(0, len(payload), 76))
    for url in (f"data:image/gif;base64,{payload}", f"DATA:image/jpeg;base64,{wrapped}"):
        clear_cache()
        prepared = prepare_image(url)
        assert (prepared.mime_type, prepared.data) == (PNG, png)
        assert prepared.data_url == f"data:image/png;base64,{payload}"


@pytest.mark.parametrize(
    ("url", "code"),
    [
        pytest.param("data:image/png;base64,!!!not-base64!!!", "invalid_image", id="bad_base64"),
        pytest.param("data:image/png;base64", "invalid_image", id="no_comma"),
        pytest.param("data:image/png;base64,", "invalid_image_format", id="empty"),
        pytest.param(
            "data:image/svg+xml," + urllib.parse.quote('<svg xmlns="http://www.w3.org/2000/svg"/>'),
            "invalid_image_format",
            id="percent_encoded_svg",
        ),
    ],
)
def test_bad_data_urls(url: str, code: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(url)
    assert caught.value.code == code


def test_pil_input() -> None:
    image = Image.new("RGB", (3000, 1000), (200, 30, 40))
    prepared = prepare_image(image, "high")
    assert_sendable(prepared)
    assert (prepared.size, prepared.source_size) == ((2048, 682), (3000, 1000))
    assert (prepared.source_bytes, prepared.format, prepared.changed) == (0, "PIL", True)
    assert prepared.mime_type == PNG  # no lossy origin known: lossless
    assert image.size == (3000, 1000)  # the caller's image is untouched
    assert prepare_image(image, "high") is not prepared  # PIL images are not cached
    assert prepare_image(image, "high") == prepared


def test_pil_input_alpha_lazy_jpeg_and_modes() -> None:
    rgba = Image.new("RGBA", (900, 900), (0, 0, 255, 128))
    assert prepare_image(rgba).mime_type == PNG
    lazy = Image.open(io.BytesIO(hostile.orientation_jpeg(6)))  # opened, not loaded, EXIF 6
    prepared = prepare_image(lazy)
    assert (prepared.mime_type, prepared.size, prepared.format) == (
        JPEG,
        hostile.UPRIGHT_SIZE,
        "JPEG",
    )
    for mode in ("1", "L", "LA", "P", "PA", "RGBa", "La", "YCbCr", "CMYK", "I", "I;16", "F"):
        assert_sendable(prepare_image(Image.new(mode, (40, 30))))


def test_animated_pil_input_follows_first_frame() -> None:
    gif = Image.open(io.BytesIO(hostile.case("animated_gif").data()))
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(gif)
    assert caught.value.code == "animated_gif_not_supported"
    gif.seek(2)
    assert prepare_image(gif, first_frame=True).size == (48, 48)
    assert gif.tell() == 0


def test_unsupported_source_type_and_detail() -> None:
    with pytest.raises(TypeError):
        prepare_image(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="detail"):
        prepare_image(hostile.small_png(), "medium")  # type: ignore[arg-type]


def test_inputs_over_the_byte_limit_are_refused_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read, "MAX_INPUT_BYTES", 1000)
    data = hostile.photo_jpeg()
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    for source in (data, path, url):
        with pytest.raises(InvalidImageError) as caught:
            prepare_image(source)
        assert caught.value.code == "image_too_large"


def test_pixel_budget_allows_jpeg_that_decodes_downscaled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opening, "MAX_PIXELS", 1_000_000)
    photo = hostile.noise((2000, 1500))
    jpeg, png = _encode(photo, "JPEG"), _encode(photo, "PNG", compress_level=1)
    assert prepare_image(jpeg, "low").size == (512, 384)  # decoded at 1/2: 0.75 MP
    for data, detail in ((png, "low"), (jpeg, "high")):  # 3 MP; a JPEG needing full scale
        with pytest.raises(InvalidImageError) as caught:
            prepare_image(data, detail)  # type: ignore[arg-type]
        assert caught.value.code == "image_too_large"


# --------------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------------

_SIZES = [
    (4032, 3024, "auto", (1024, 768)),
    (4032, 3024, "low", (512, 384)),
    (3000, 1000, "high", (2048, 682)),
    (4096, 8192, "low", (256, 512)),
    (2048, 4096, "high", (768, 1536)),
    (1024, 1024, "high", (768, 768)),
    (20000, 400, "high", (2048, 40)),
    (1, 5000, "auto", (1, 2048)),
    (1, 5000, "low", (1, 512)),
    (5000, 1, "high", (2048, 1)),
    (700, 300, "low", (512, 219)),
    (500, 500, "high", (500, 500)),
    (100, 50, "high", (100, 50)),
    (300, 200, "low", (300, 200)),
    (1, 1, "auto", (1, 1)),
]


@pytest.mark.parametrize(
    ("width", "height", "detail", "expected"),
    [pytest.param(w, h, d, e, id=f"{w}x{h}-{d}") for w, h, d, e in _SIZES],
)
def test_exact_target_sizes(
    width: int, height: int, detail: Detail, expected: tuple[int, int]
) -> None:
    assert effective_size(width, height, detail) == expected
    prepared = prepare_image(Image.new("L", (width, height), 90), detail)
    assert_sendable(prepared)
    assert prepared.size == expected
    assert prepared.tokens == estimate_image_tokens(width, height, detail)


@pytest.mark.parametrize(
    ("detail", "expected"), [("auto", (1024, 768)), ("high", (1024, 768)), ("low", (512, 384))]
)
def test_camera_jpeg_bytes_exact_size(detail: Detail, expected: tuple[int, int]) -> None:
    data = _camera_jpeg()
    prepared = prepare_image(data, detail)
    assert_sendable(prepared, data)
    assert (prepared.size, prepared.source_size, prepared.mime_type) == (
        expected,
        (4032, 3024),
        JPEG,
    )
    assert len(prepared.data) < len(data) / 5


def test_rotated_camera_jpeg_drafts_on_stored_dimensions() -> None:
    upright = hostile.upright().resize((3024, 4032))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    data = _encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (4032, 3024)
    assert read_image_size(data) == (3024, 4032)
    prepared = prepare_image(data)
    out = assert_sendable(prepared, data)
    assert prepared.size == (768, 1024)
    assert_colours_close(hostile.quadrant_colours(out), hostile.QUADRANTS)


def _camera_jpeg() -> bytes:
    return hostile.camera_jpeg()  # built once per session


def _detailed(size: tuple[int, int]) -> Image.Image:
    """Fine detail that compresses like a busy photo (blurred noise)."""
    return hostile.noise(size, seed=7).filter(ImageFilter.GaussianBlur(1.2))


def test_a_resized_jpeg_never_outgrows_its_source() -> None:
    # A 512 x 600 JPEG at quality 75 (58 kB): at quality 90, its 436 x 512 copy for detail low
    # took more bytes than the whole original; at the source's own quality it takes fewer.
    data = _encode(_detailed((512, 600)), "JPEG", quality=75)
    prepared = prepare_image(data, "low")
    assert_sendable(prepared, data)
    assert (prepared.mime_type, prepared.size, prepared.changed) == (JPEG, (436, 512), True)
    assert len(prepared.data) < len(data)
    high = _encode(_detailed((512, 600)), "JPEG", quality=98)  # still quality 90 from this one
    assert len(prepare_image(high, "low").data) < len(high) / 2


# --------------------------------------------------------------------------------------------
# The result object and the cache
# --------------------------------------------------------------------------------------------


def test_prepared_image_is_frozen_hashable_and_quiet() -> None:
    prepared = prepare_image(_camera_jpeg())
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.width = 1  # type: ignore[misc]
    assert hash(prepared) == hash(dataclasses.replace(prepared))
    text = repr(prepared)
    assert text.startswith("PreparedImage(image/jpeg 1024x768, ")
    assert "(from JPEG 4032x3024, " in text
    assert "detail='auto', tokens=765)" in text
    passthrough = repr(prepare_image(TEST_IMAGES / "hopper.png"))
    assert passthrough == (
        "PreparedImage(image/png 128x128, 30,605 bytes (unchanged PNG), detail='auto', tokens=255)"
    )


def test_cache_returns_the_same_object_per_content_and_detail() -> None:
    data = _camera_jpeg()
    first = prepare_image(data)
    assert prepare_image(bytes(bytearray(data))) is first
    assert prepare_image(data, "low") is not first
    assert prepare_image(data, first_frame=True) is not first
    clear_cache()
    again = prepare_image(data)
    assert again is not first
    assert again == first


def test_cache_is_bounded_by_entries_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_preparation._cache, "max_entries", 4)
    prepared = [prepare_image(_encode(Image.new("L", (8, 8), n), "PNG")) for n in range(10)]
    assert len(_preparation._cache) == 4
    assert prepare_image(prepared[-1].data) is prepared[-1]
    monkeypatch.setattr(_preparation._cache, "max_weight", len(prepared[0].data) * 2)
    prepare_image(_encode(Image.new("L", (8, 8), 99), "PNG"))
    assert len(_preparation._cache) <= 2


def test_concurrent_callers_agree() -> None:
    data = (TEST_IMAGES / "flower.jpg").read_bytes()
    sources = [data, TEST_IMAGES / "hopper.tif", hostile.photo_jpeg()] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda s: prepare_image(s, "low"), sources))
    for i, result in enumerate(results):
        assert result == results[i % 3]


# --------------------------------------------------------------------------------------------
# Memory before pixels
# --------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, at 89 MP
def test_an_image_too_large_to_decode_goes_as_it_is_with_a_warning() -> None:
    data = hostile.tiny_huge_webp()  # 34 bytes, 10000 x 10000: 400 MB decoded
    with pytest.warns(_preparation.UnpreparedImageWarning, match="sent as it is, unprepared"):
        prepared = prepare_image(data)
    assert (prepared.data, prepared.mime_type, prepared.size) == (data, WEBP, (10_000, 10_000))
    assert (prepared.changed, prepared.tokens) == (False, 765)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # our own check holds
@pytest.mark.parametrize(
    "make",
    [hostile.tiff_line_rgba, hostile.ico_hiding_a_tall_png],
    ids=["tiff-1x100M-rgba", "ico-hiding-1x178M-png"],
)
def test_what_the_api_would_refuse_too_is_refused_before_decoding(make: Any) -> None:
    with pytest.raises(InvalidImageError) as caught:
        prepare_image(make())
    assert caught.value.code == "image_too_large"


def test_prepare_image_holds_its_decoded_bytes_in_the_process_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reserved: list[int] = []
    real = _preparation.BUDGET.reserve

    def spy(amount: int) -> Any:
        reserved.append(amount)
        return real(amount)

    monkeypatch.setattr(_preparation.BUDGET, "reserve", spy)
    prepare_image(_camera_jpeg())  # 4032 x 3024, drafted at 1/2: 2016 x 1512 RGB
    assert reserved == [1512 * (2016 * 4 + 8)]


# --------------------------------------------------------------------------------------------
# The facts view
# --------------------------------------------------------------------------------------------


def test_facts_are_one_view_that_round_trips() -> None:
    prepared = prepare_image(TEST_IMAGES / "hopper.tif", "low")
    facts = prepared.facts()
    assert tuple(facts) == FACTS
    assert facts == {
        "format": "TIFF",
        "source_width": 128,
        "source_height": 128,
        "source_bytes": 49597,
        "mime_type": PNG,
        "width": 128,
        "height": 128,
        "bytes": len(prepared.data),
        "changed": True,
        "detail": "low",
        "image_tokens": 85,
    }
    assert PreparedImage.from_facts(prepared.data, facts) == prepared


def test_the_facts_of_a_refused_image_are_what_its_header_says() -> None:
    animated = (TEST_IMAGES / "iss634.gif").read_bytes()
    facts = refused_facts(animated, "auto")
    assert facts == unknown_facts("auto") | {
        "format": "GIF",
        "source_width": 245,
        "source_height": 245,
        "source_bytes": len(animated),
    }
    assert refused_facts(b"not an image", "low") == unknown_facts("low") | {"source_bytes": 12}


def test_source_format_is_deprecated_for_format() -> None:
    prepared = prepare_image(TEST_IMAGES / "hopper.bmp")
    with pytest.warns(DeprecationWarning, match=r"use PreparedImage\.format"):
        assert prepared.source_format == "BMP"
    assert prepared.format == "BMP"
