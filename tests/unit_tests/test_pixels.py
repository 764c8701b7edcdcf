"""_pixels: the strip-parallel resize and PNG writer give what one-core Pillow gives.

Small images normally run in one strip; the ``many_strips`` fixture lowers the threshold so
that they are cut into up to four strips on the pool, which is what a 12 MP photo gets.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import threading
import time
import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageDraw

from langchain_afarensis_vision import _pixels
from tests.hostile_images import noise

LANCZOS = Image.Resampling.LANCZOS


@pytest.fixture
def many_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_pixels, "_MIN_STRIP_PIXELS", 1)
    monkeypatch.setattr(_pixels, "workers", lambda: 4)
    monkeypatch.setattr(_pixels, "_pool", None)


def _image(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Noise over a gradient in ``mode``: every band differs, alpha included."""
    base = noise(size, seed=seed)
    if mode in {"RGBA", "LA"}:
        alpha = Image.linear_gradient("L").resize(size)
        base = base.convert("RGBA")
        base.putalpha(alpha)
        return base if mode == "RGBA" else base.convert("LA")
    if mode in {"I", "F", "I;16"}:
        return base.convert("L").convert("I").point(lambda v: v * 257).convert(mode)
    return base.convert(mode)


def _bytes_of(image: Image.Image) -> bytes:
    return image.tobytes() if image.mode not in {"I;16"} else image.convert("I").tobytes()


MODES = ["L", "RGB", "RGBA", "LA", "CMYK", "I", "F", "I;16"]
RESIZES = [
    ((801, 603), (400, 301), None, 1.5),
    ((1000, 600), (123, 71), None, 1.5),
    ((640, 480), (320, 240), None, None),
    ((2016, 1512), (1024, 768), (0.0, 0.0, 2016.0, 1512.0), 1.5),
    ((500, 400), (211, 150), (3.5, 2.0, 498.0, 397.25), 1.5),
    ((37, 900), (9, 200), None, 2.0),
]


def _two_pillow_passes(
    image: Image.Image,
    target: tuple[int, int],
    box: tuple[float, float, float, float] | None,
    gap: float | None,
) -> Image.Image:
    """The reference: Pillow's reduce() step as ``Image.resize`` does it, then Pillow's row and
    column passes as two calls, rows first."""
    straight = image.mode
    if straight in {"RGBA", "LA"}:
        image = image.convert(straight[:-1] + "a")
    x0, y0, x1, y1 = box or (0, 0, *image.size)
    if gap is not None:
        fx = int((x1 - x0) / target[0] / gap) or 1
        fy = int((y1 - y0) / target[1] / gap) or 1
        if fx > 1 or fy > 1:
            rb = image._get_safe_box(target, LANCZOS, (x0, y0, x1, y1))
            image = image.reduce((fx, fy), box=rb)
            x0, y0, x1, y1 = (
                (x0 - rb[0]) / fx,
                (y0 - rb[1]) / fy,
                (x1 - rb[0]) / fx,
                (y1 - rb[1]) / fy,
            )
    width, height = target

    def rows(im: Image.Image) -> Image.Image:
        return im.resize((width, im.height), LANCZOS, box=(x0, 0, x1, im.height))

    def columns(im: Image.Image) -> Image.Image:
        return im.resize((im.width, height), LANCZOS, box=(0, y0, im.width, y1))

    out = columns(rows(image))
    return out.convert(straight) if out.mode != straight else out


@pytest.mark.usefixtures("many_strips")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("source", "target", "box", "gap"), RESIZES)
def test_resize_is_pillows_two_passes(
    mode: str,
    source: tuple[int, int],
    target: tuple[int, int],
    box: tuple[float, float, float, float] | None,
    gap: float | None,
) -> None:
    image = _image(mode, source)
    gap = None if mode == "I;16" else gap  # Pillow has no reduce() for I;16
    got = _pixels.resize(image, target, LANCZOS, box=box, reducing_gap=gap)
    expected = _two_pillow_passes(image, target, box, gap)
    assert (got.mode, got.size) == (expected.mode, expected.size)
    assert _bytes_of(got) == _bytes_of(expected)
    if target[0] / source[0] <= target[1] / source[1]:  # where Pillow 13 takes rows first too
        assert _bytes_of(got) == _bytes_of(image.resize(target, LANCZOS, box=box, reducing_gap=gap))


@pytest.mark.parametrize("resample", [Image.Resampling.NEAREST, Image.Resampling.BICUBIC])
@pytest.mark.usefixtures("many_strips")
def test_resize_other_filters_and_palette_images(resample: Image.Resampling) -> None:
    for image in (_image("RGB", (300, 200)), _image("RGB", (300, 200)).convert("P")):
        expected = image.resize((97, 61), resample, reducing_gap=1.5)
        got = _pixels.resize(image, (97, 61), resample, reducing_gap=1.5)
        assert got.tobytes() == expected.tobytes()


def test_a_12mp_resize_uses_the_pool_and_stays_exact() -> None:
    """The real size, no monkeypatching: several strips when the machine has the cores."""
    image = _image("RGB", (2016, 1512), seed=3)
    strips = _pixels._strips(768, 2016 * 1512)
    assert len(strips) == _pixels.workers()
    expected = image.resize((1024, 768), LANCZOS, reducing_gap=1.5)  # rows first here too
    assert _pixels.resize(image, (1024, 768), LANCZOS, reducing_gap=1.5) == expected


# -- PNG ---------------------------------------------------------------------------------------


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk, checking each CRC."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    found, at = [], 8
    while at < len(png):
        (length,) = struct.unpack_from(">I", png, at)
        kind, body = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack_from(">I", png, at + 8 + length)
        assert crc == zlib.crc32(kind + body), kind
        found.append((kind, body))
        at += 12 + length
    return found


def _decoded(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.copy()


@pytest.mark.usefixtures("many_strips")
@pytest.mark.parametrize("mode", sorted(_pixels.PNG_MODES))
@pytest.mark.parametrize("size", [(1, 1), (1, 70), (70, 1), (129, 67), (640, 480)])
def test_png_holds_exactly_the_pixels(mode: str, size: tuple[int, int]) -> None:
    image = _image(mode, size, seed=size[0])
    png = _pixels.encode_png(image, None, 3)
    assert [kind for kind, _ in _chunks(png)] == [b"IHDR", b"IDAT", b"IEND"]
    back = _decoded(png)
    assert (back.mode, back.size) == (mode, size)
    assert back.tobytes() == image.tobytes()


@pytest.mark.usefixtures("many_strips")
def test_png_filters_every_row_as_pillow_does_for_the_whole_image() -> None:
    """The strips' overlap row makes each strip's first row filtered against its real
    predecessor: the filtered stream is Pillow's own, byte for byte."""
    image = _image("RGB", (300, 257))
    idat = b"".join(
        body for kind, body in _chunks(_pixels.encode_png(image, None, 3)) if kind == b"IDAT"
    )
    assert zlib.decompress(idat) == _pixels._filtered_rows(image)
    assert len(_pixels._strips(257, 300 * 257)) == 4  # the case under test is cut in strips


def test_png_keeps_an_icc_profile() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    png = _pixels.encode_png(_image("RGB", (64, 48)), icc, 3)
    assert [kind for kind, _ in _chunks(png)] == [b"IHDR", b"iCCP", b"IDAT", b"IEND"]
    assert _decoded(png).info["icc_profile"] == icc


def _text_page(size: tuple[int, int]) -> Image.Image:
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    for y in range(0, size[1], 14):
        draw.text(
            (4, y), "The quick brown fox jumps over the lazy dog, 0123456789. " * 3, fill="black"
        )
    return page


def test_strategy_is_run_length_for_photographs_and_default_for_text() -> None:
    photo = _pixels._filtered_rows(_image("RGB", (512, 384)).resize((256, 192), LANCZOS))
    text = _pixels._filtered_rows(_text_page((512, 384)))
    assert _pixels._strategy(memoryview(photo), 3) == zlib.Z_RLE
    assert _pixels._strategy(memoryview(text), 3) == zlib.Z_DEFAULT_STRATEGY


@pytest.mark.parametrize("make", [_text_page, lambda size: _image("RGB", size).resize(size)])
def test_png_is_no_larger_than_pillows_level_3(
    make: Callable[[tuple[int, int]], Image.Image],
) -> None:
    image = make((800, 600))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=3)
    assert len(_pixels.encode_png(image, None, 3)) <= len(buffer.getvalue()) * 1.02


@pytest.mark.parametrize("cores", [1, 2, 3, 8])
def test_the_same_bytes_on_any_number_of_cores(monkeypatch: pytest.MonkeyPatch, cores: int) -> None:
    """Cassettes match prepared images by digest: a CI machine must produce the same bytes."""
    image = _image("RGB", (1200, 900)).resize((1000, 750))
    one_core = (_pixels.encode_png(image, None, 3), _pixels.resize(image, (512, 384), LANCZOS))
    monkeypatch.setattr(_pixels, "workers", lambda: cores)
    monkeypatch.setattr(_pixels, "_MIN_STRIP_PIXELS", 1)
    png, small = _pixels.encode_png(image, None, 3), _pixels.resize(image, (512, 384), LANCZOS)
    assert png == one_core[0]
    assert small.tobytes() == one_core[1].tobytes()


# -- the pool ----------------------------------------------------------------------------------


def test_run_all_keeps_order_and_uses_other_threads() -> None:
    names: list[str] = []

    def call(i: int) -> Callable[[], int]:
        def run() -> int:
            names.append(threading.current_thread().name)
            time.sleep(0.01)
            return i * i

        return run

    assert _pixels.run_all([call(i) for i in range(5)]) == [0, 1, 4, 9, 16]
    assert names.count(threading.current_thread().name) >= 1
    assert len(set(names)) >= min(2, _pixels.workers())


def test_run_all_raises_only_after_every_call_ended() -> None:
    ended = threading.Event()

    def slow() -> int:
        time.sleep(0.2)
        ended.set()
        return 1

    def broken() -> int:
        raise ValueError("bad strip")

    with pytest.raises(ValueError, match="bad strip"):
        _pixels.run_all([broken, slow])
    assert ended.is_set()
    with pytest.raises(ValueError, match="bad strip"):
        _pixels.run_all([lambda: 0, broken])


def test_run_all_does_not_wait_for_a_helper_queued_behind_other_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the pool busy (another caller's hash), the caller does the work itself and returns."""
    monkeypatch.setattr(_pixels, "workers", lambda: 2)
    monkeypatch.setattr(_pixels, "_pool", None)  # a pool of one thread
    release = threading.Event()
    blocker = _pixels.start(lambda: release.wait(10))
    try:
        assert _pixels.run_all([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]
        assert not release.is_set()  # returned while the only pool thread was still busy
    finally:
        release.set()
    assert blocker.result() is True


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads running
def test_a_forked_child_gets_a_pool_of_its_own() -> None:
    """The parent's pool threads do not exist in a forked child: it must not wait on them."""
    _pixels.run_all([lambda: 1, lambda: 2])  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        signal.alarm(20)
        ok = _pixels.run_all([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on its parent's pool")
    assert os.waitstatus_to_exitcode(done[1]) == 0


# -- properties --------------------------------------------------------------------------------

PROFILE = settings(max_examples=40, deadline=None, database=None)
SIDES = st.integers(1, 300)


@PROFILE
@given(
    mode=st.sampled_from(sorted(_pixels.PNG_MODES)),
    width=SIDES,
    height=SIDES,
    seed=st.integers(0, 1000),
    strips=st.integers(1, 6),
)
def test_any_png_round_trips(mode: str, width: int, height: int, seed: int, strips: int) -> None:
    image = _image(mode, (width, height), seed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pixels, "_MIN_STRIP_PIXELS", 1)
        patch.setattr(_pixels, "workers", lambda: strips)
        png = _pixels.encode_png(image, None, 3)
    assert _decoded(png).tobytes() == image.tobytes()


@settings(PROFILE, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.tuples(st.integers(2, 700), st.integers(2, 700)),
    target=st.tuples(st.integers(1, 700), st.integers(1, 700)),
    gap=st.sampled_from([None, 1.5, 2.0, 3.0]),
    strips=st.integers(1, 6),
)
def test_any_resize_is_pillows(
    source: tuple[int, int], target: tuple[int, int], gap: float | None, strips: int
) -> None:
    image = _image("RGB", source)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_pixels, "_MIN_STRIP_PIXELS", 1)
        patch.setattr(_pixels, "workers", lambda: strips)
        got = _pixels.resize(image, target, LANCZOS, reducing_gap=gap)
    assert got.tobytes() == _two_pillow_passes(image, target, None, gap).tobytes()
