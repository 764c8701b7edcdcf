"""Broken, hostile and odd images: prepared correctly or refused, in bounded time and memory.

Every case of ``tests/hostile_images.py`` plus the kinds it lacks (:func:`extra_cases`: wrong
file extensions, more polyglots, WEBP/BMP/PPM bombs, an image exactly at the pixel budget,
16-bit with alpha, CMYK TIFF, GIF transparency, many-frame GIFs, EXIF orientation in WEBP and
out of range, 1x1 and 1x20000 images, truncated WEBP/GIF, ...) runs in its own process:

* a worker interpreter is started once (imports done), and forks one child per case; the child
  caps its address space with ``RLIMIT_AS`` (:data:`ADDRESS_SPACE_CAP`), so a bomb cannot take
  the machine down, and the worker kills it after :data:`CASE_TIMEOUT` seconds, so a hang fails
  the test instead of stalling it. The child's peak RSS comes from ``wait4`` (the kernel's
  count, Pillow's C buffers included); ``tracemalloc``'s peak is reported alongside.
* in the child, the file goes through ``prepare_image`` (from its path), through
  ``inspect_image`` (the API's own rules, as the local server applies them), and through
  ``ChatAfarensis.invoke`` on the scripted :class:`~tests._mock_api.MockAPI`: a refusal must be
  the same ``InvalidImageError`` and send nothing; a prepared image must be sent exactly as
  ``prepare_image`` made it, with its detail.
* back in the test, what the API must refuse is sent raw to the local server, which must answer
  400 with the same code; every prepared image is sent to it too, and must be accepted at the
  size ``prepare_image`` reported.

Cases that Pillow's own decompression-bomb guard refuses run a second time with the guard off
(``Image.MAX_IMAGE_PIXELS = None``, as some applications set it): the package's own pixel budget
must still hold, within the same bounds.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import tracemalloc
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import httpx2
import pytest
from langchain_core.messages import HumanMessage
from PIL import ExifTags, Image

from langchain_afarensis_vision import ChatAfarensis, InvalidImageError
from langchain_afarensis_vision._api.contract import (
    ACCEPTED_MIME_TYPES,
    MAX_IMAGE_BYTES,
    effective_size,
    estimate_image_tokens,
)
from langchain_afarensis_vision.images import PreparedImage, clear_cache, prepare_image
from langchain_afarensis_vision.server import LocalAfarensisServer
from langchain_afarensis_vision.server._images import inspect_image
from tests import hostile_images as hostile
from tests._mock_api import MockAPI, completion
from tests._schema import validator
from tests._support import ROOT

pytestmark = pytest.mark.enable_socket

ADDRESS_SPACE_CAP = 1536 * 1024 * 1024
"""Hard cap on each child's virtual address space (``RLIMIT_AS``)."""
MEMORY_BUDGET = 1024 * 1024 * 1024
"""Most a case may grow the child's resident memory (peak RSS minus RSS at the start)."""
CASE_TIMEOUT = 30.0
"""A child still running after this is killed, and its case fails as a hang."""
TIME_BUDGET = 10.0
"""Most a case may take (prepare, inspect and the chat call together) on this 2-core machine."""
API_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "GIF"})
PNG, JPEG, GIF, WEBP = "image/png", "image/jpeg", "image/gif", "image/webp"
_FORMAT_OF = {PNG: "PNG", JPEG: "JPEG", GIF: "GIF", WEBP: "WEBP"}
_KEY = "sk-test-hostile-0123456789abcdef"
PIXELS_NOT_EXAMINED = "pixels were not examined"


# -- the cases the corpus lacks ------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _webp_bomb() -> bytes:
    """A lossless WEBP whose VP8L header declares 16384 x 16384 (268 M pixels)."""
    data = bytearray(_encode(hostile.noise((16, 16)), "WEBP", lossless=True))
    at = data.index(b"VP8L") + 9  # chunk id, chunk size, then the 0x2f signature byte
    bits = int.from_bytes(data[at : at + 4], "little")
    bits = (bits & ~((1 << 28) - 1)) | 16383 | (16383 << 14)  # width - 1, height - 1
    data[at : at + 4] = bits.to_bytes(4, "little")
    return bytes(data)


def _bmp_bomb() -> bytes:
    data = bytearray(_encode(Image.new("RGB", (8, 8)), "BMP"))
    struct.pack_into("<ii", data, 18, 100_000, 100_000)
    return bytes(data)


def _png_at_pixel_budget() -> bytes:
    """10000 x 10000 black RGB (exactly the 100 M pixel budget) in 290 kB: decodes to 300 MB."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * 10_000)
    idat = b"".join(compressor.compress(row) for _ in range(10_000)) + compressor.flush()
    header = struct.pack(">IIBBBBB", 10_000, 10_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + hostile.png_chunk(b"IHDR", header)
        + hostile.png_chunk(b"IDAT", idat)
        + hostile.png_chunk(b"IEND", b"")
    )


def _truncated(fmt: str) -> bytes:
    data = _encode(hostile.noise((300, 300)), fmt)
    return data[: len(data) // 2]


def _many_frames_gif(count: int = 300) -> bytes:
    frames = [hostile.noise((16, 16), seed=n).convert("P") for n in range(count)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)


def _webp_with_orientation_8() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 8
    stored = hostile.upright().transpose(Image.Transpose.ROTATE_270)  # EXIF 8 turns it back
    return _encode(stored, "WEBP", quality=95, exif=exif.tobytes())


def _jpeg_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = value
    return _encode(hostile.upright(), "JPEG", quality=95, exif=exif.tobytes())


def _jpeg_with_corrupt_exif() -> bytes:
    jpeg = hostile.small_jpeg()
    segment = b"Exif\0\0MM\0*\0\0\0\x08\xff\xff" + b"\x13" * 50
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + jpeg[2:]


def _gif_transparent() -> bytes:
    image = hostile.noise((40, 40)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return _encode(image, "GIF", transparency=0)


def _multipage_tiff() -> bytes:
    pages = [hostile.noise((40, 30), seed=n) for n in range(3)]
    return _encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])


_PDF_HEAD = b"%PDF-1.4\n1 0 obj\n<< /Type /XObject /Subtype /Image /Length 9 >>\nstream\n"
_PDF_TAIL = b"\nendstream\nendobj\ntrailer\n<< >>\n%%EOF\n"


@dataclass(frozen=True)
class Hostile:
    """A case, the file name it is written under, and the warnings it may raise."""

    case: hostile.Case
    filename: str
    warns: tuple[str, ...] = ()
    pillow_guard: bool = True

    @property
    def id(self) -> str:
        return self.case.name if self.pillow_guard else f"{self.case.name}[no_pillow_guard]"


def _lacks(needle: bytes) -> hostile.Check:
    def check(prepared: PreparedImage) -> None:
        assert needle not in prepared.data

    return check


def extra_cases() -> list[Hostile]:
    """The kinds of hostile input ``tests/hostile_images.py`` does not cover, with file names."""
    fmt, invalid, large = "invalid_image_format", "invalid_image", "image_too_large"
    animated = "animated_gif_not_supported"
    c = hostile.Case
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64
    heic_code = invalid if hostile.HEIF_PLUGIN else fmt
    return [
        # Names that lie about the content: the bytes decide.
        Hostile(c("ext_png_named_jpg", hostile.small_png, mime=PNG, changed=False), "photo.jpg"),
        Hostile(c("ext_jpeg_named_png", hostile.small_jpeg, mime=JPEG, changed=False), "a.png"),
        Hostile(c("ext_gif_named_webp", hostile.small_gif, mime=GIF, changed=False), "a.webp"),
        Hostile(c("ext_text_named_png", lambda: b"just some text\n" * 20, fmt), "notes.png"),
        Hostile(c("ext_svg_named_png", lambda: hostile._TEXT["svg"], fmt, "SVG"), "logo.png"),
        Hostile(c("ext_heic_named_jpg", lambda: heic, heic_code), "IMG_0001.jpg"),
        Hostile(c("ext_empty_named_png", lambda: b"", fmt, "0 bytes"), "empty.png"),
        # Polyglots.
        Hostile(
            c(
                "polyglot_pdf_wrapping_jpeg",
                lambda: _PDF_HEAD + hostile.small_jpeg() + _PDF_TAIL,
                fmt,
                "PDF",
            ),
            "scan.jpg",
        ),
        Hostile(
            c(
                "polyglot_jpeg_then_pdf",
                lambda: hostile.small_jpeg() + _PDF_HEAD + _PDF_TAIL,
                mime=JPEG,
                changed=True,
                checks=(_lacks(b"%PDF"),),
            ),
            "invoice.pdf",
        ),
        Hostile(
            c(
                "polyglot_html_then_png",
                lambda: b"<html><body>hi</body></html>\n" + hostile.small_png(),
                fmt,
                "HTML",
            ),
            "page.png",
        ),
        Hostile(
            c(
                "polyglot_gif_then_zip",
                lambda: hostile.small_gif() + hostile._png_with_zip()[len(hostile.small_png()) :],
                mime=PNG,
                changed=True,
                checks=(_lacks(b"PK\3\4"),),
            ),
            "gifar.gif",
        ),
        # Decompression bombs the corpus lacks, and an image exactly at the pixel budget.
        # A lossless WEBP declaring 16384 x 16384: no coding bound tells it truncated, and
        # libwebp would allocate 4 GB to open it: it goes as it is, and the API decides.
        Hostile(
            c(
                "webp_bomb_vp8l_header",
                _webp_bomb,
                mime=WEBP,
                size=(16_384, 16_384),
                changed=False,
                unprepared=True,
            ),
            "bomb.webp",
        ),
        Hostile(c("bmp_bomb_header", _bmp_bomb, large), "bomb.bmp"),
        Hostile(
            c("ppm_bomb_header", lambda: b"P6\n60000 60000\n255\n" + bytes(100), large), "b.ppm"
        ),
        Hostile(
            c(
                "png_exactly_at_pixel_budget",
                _png_at_pixel_budget,
                mime=PNG,
                size=(768, 768),
                changed=True,
            ),
            "budget.png",
            warns=("DecompressionBombWarning",),
        ),
        # Odd modes.
        Hostile(
            c(
                "png_16bit_rgba",
                lambda: hostile.raw_png(
                    20, 10, depth=16, colour=6, rows=(b"\0" + b"\x80\0" * 80) * 10
                ),
                mime=PNG,
                size=(20, 10),
            ),
            "deep.png",
        ),
        Hostile(
            c(
                "png_16bit_grey_alpha",
                lambda: hostile.raw_png(
                    20, 10, depth=16, colour=4, rows=(b"\0" + b"\x80\0" * 40) * 10
                ),
                mime=PNG,
                size=(20, 10),
            ),
            "deep_la.png",
        ),
        Hostile(
            c(
                "cmyk_tiff",
                lambda: _encode(Image.new("CMYK", (100, 80), (0, 255, 255, 0)), "TIFF"),
                mime=PNG,
                size=(100, 80),
            ),
            "print.tif",
        ),
        Hostile(c("gif_transparent_index", _gif_transparent, mime=GIF, changed=False), "t.gif"),
        Hostile(c("tiff_three_pages", _multipage_tiff, mime=PNG, size=(40, 30)), "pages.tif"),
        # Animation with many frames.
        Hostile(c("gif_300_frames", _many_frames_gif, animated), "spinner.gif"),
        Hostile(
            c("gif_300_frames_first_frame", _many_frames_gif, mime=PNG, first_frame=True),
            "spinner.gif",
        ),
        # Orientation outside the corpus: in a WEBP, out of range, and corrupt EXIF.
        Hostile(
            c(
                "webp_exif_orientation_8",
                _webp_with_orientation_8,
                mime=JPEG,
                size=hostile.UPRIGHT_SIZE,
                checks=(hostile._upright_colours,),
            ),
            "turned.webp",
        ),
        Hostile(
            c(
                "jpeg_exif_orientation_9_ignored",
                lambda: _jpeg_orientation(9),
                mime=JPEG,
                size=hostile.UPRIGHT_SIZE,
                changed=False,
            ),
            "nine.jpg",
        ),
        Hostile(
            c("jpeg_corrupt_exif", _jpeg_with_corrupt_exif, mime=JPEG, changed=False),
            "corrupt_exif.jpg",
            warns=("Corrupt EXIF data",),
        ),
        # Extreme sizes.
        Hostile(
            c("one_by_one_gif", lambda: _encode(Image.new("P", (1, 1)), "GIF"), mime=GIF),
            "px.gif",
        ),
        Hostile(
            c("one_by_one_webp", lambda: _encode(Image.new("RGB", (1, 1)), "WEBP"), mime=WEBP),
            "px.webp",
        ),
        Hostile(
            c(
                "one_by_one_rgba_png",
                lambda: _encode(Image.new("RGBA", (1, 1), (1, 2, 3, 4)), "PNG"),
                mime=PNG,
                changed=False,
            ),
            "px.png",
        ),
        Hostile(
            c(
                "line_1x20000",
                lambda: _encode(Image.new("RGB", (1, 20_000), (9, 9, 9)), "PNG"),
                mime=PNG,
                size=(1, 2048),
            ),
            "line.png",
        ),
        Hostile(
            c(
                "tower_400x20000_low",
                lambda: _encode(Image.new("RGB", (400, 20_000), (9, 90, 9)), "PNG"),
                mime=PNG,
                size=(10, 512),
                detail="low",
            ),
            "tower.png",
        ),
        Hostile(
            c("png_zero_width", lambda: hostile.raw_png(0, 10), invalid),
            "zero.png",
        ),
        # Truncation in the formats the corpus does not truncate.
        Hostile(c("truncated_webp", lambda: _truncated("WEBP"), invalid), "cut.webp"),
        Hostile(c("truncated_gif", lambda: _truncated("GIF"), invalid), "cut.gif"),
    ]


def _bomb(case: hostile.Case) -> bool:
    """Whether Pillow's own pixel guard may act on the case (it declares many pixels)."""
    return case.code == "image_too_large" or "bomb" in case.name or "pixel_budget" in case.name


def all_cases() -> list[Hostile]:
    cases = [Hostile(c, f"{c.name}.img") for c in hostile.corpus()] + extra_cases()
    unguarded = [replace(h, pillow_guard=False, warns=()) for h in cases if _bomb(h.case)]
    return cases + unguarded


CASES = all_cases()


def test_every_listed_kind_is_covered() -> None:
    names = {h.case.name for h in CASES}
    assert len(names) >= 90
    kinds = {
        "truncated": ("truncated_jpeg", "truncated_png", "truncated_webp", "truncated_gif"),
        "zero bytes": ("zero_bytes", "ext_empty_named_png"),
        "wrong extension": ("ext_png_named_jpg", "ext_text_named_png", "ext_heic_named_jpg"),
        "polyglots": ("png_with_zip_appended", "polyglot_pdf_wrapping_jpeg"),
        "bombs": (
            "png_bomb_ihdr",
            "gif_bomb_logical_screen",
            "jpeg_bomb_sof",
            "webp_bomb_vp8l_header",
        ),
        "25 MB PNG": ("noise_png_25mb",),
        "16-bit": ("png_16bit_grey", "png_16bit_rgb", "png_16bit_rgba"),
        "CMYK": ("cmyk_jpeg", "cmyk_tiff"),
        "palette+alpha": ("palette_alpha_png_small", "gif_transparent_index"),
        "animated": ("animated_gif", "animated_webp", "animated_png", "gif_300_frames"),
        "EXIF 1-8": tuple(f"exif_orientation_{n}" for n in range(1, 9)),
        "1x1": ("one_by_one_png", "one_by_one_jpeg", "one_by_one_gif", "one_by_one_webp"),
        "20000x400": ("panorama_20000x400", "tower_400x20000_low"),
        "SVG, PDF, HEIC": ("svg_text", "pdf_bytes", "heic_like_ftyp"),
    }
    for kind, members in kinds.items():
        assert set(members) <= names, kind


# -- the worker: one interpreter, a forked and capped child per case -----------------------------


def _rss_kb() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _memory_error_in(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _prepare_in_child(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    clear_cache()
    try:
        prepared = prepare_image(path, request["detail"], first_frame=request["first_frame"])
    except InvalidImageError as exc:
        return {"refused": exc.code, "message": str(exc), "memory_error": _memory_error_in(exc)}
    return {**prepared.facts(), "data": base64.b64encode(prepared.data).decode()}


def _inspect_in_child(raw: bytes) -> dict[str, Any]:
    try:
        info = inspect_image(raw)
    except InvalidImageError as exc:
        return {"refused": exc.code, "memory_error": _memory_error_in(exc)}
    return {"mime": info.mime_type, "size": [info.width, info.height], "examined": info.examined}


def _chat_in_child(raw: bytes, request: dict[str, Any]) -> dict[str, Any]:
    """``ChatAfarensis.invoke`` with the raw bytes as a base64 block, on the scripted API.

    (An image prepared just before comes from prepare_image's cache: what is checked here is
    that the chat path refuses, or sends exactly, what prepare_image decided.)"""
    api = MockAPI().queue(completion("fine"))
    clients = api.clients()
    model = ChatAfarensis(
        api_key=_KEY, max_retries=0, image_first_frame=request["first_frame"], **clients
    )
    block = {
        "type": "image",
        "base64": base64.b64encode(raw).decode(),
        "mime_type": "image/png",  # declared types are not trusted: the bytes decide
        "extras": {"detail": request["detail"]},
    }
    message = HumanMessage(content=[{"type": "text", "text": "What is this?"}, block])
    try:
        model.invoke([message])
    except InvalidImageError as exc:
        return {"refused": exc.code, "requests": len(api.requests)}
    finally:
        clients["http_client"].close()
    (sent,) = api.bodies
    image_url = sent["messages"][0]["content"][1]["image_url"]
    return {
        "requests": len(api.requests),
        "sent_sha256": hashlib.sha256(image_url["url"].encode()).hexdigest(),
        "detail": image_url["detail"],
    }


def _child(request: dict[str, Any]) -> dict[str, Any]:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))
    if not request["pillow_guard"]:
        Image.MAX_IMAGE_PIXELS = None
    if request.get("hang"):  # the harness's own test: a case that never ends
        time.sleep(3600)
    if request.get("hog"):  # ... and one that wants more memory than the cap
        bytearray(ADDRESS_SPACE_CAP)
    baseline = _rss_kb()
    tracemalloc.start()
    began = time.perf_counter()
    path = Path(request["path"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out: dict[str, Any] = {"prepare": _prepare_in_child(path, request)}
        raw = path.read_bytes()
        out["inspect"] = _inspect_in_child(raw)
        out["chat"] = _chat_in_child(raw, request)
    out["seconds"] = time.perf_counter() - began
    out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
    out["baseline_rss_kb"] = baseline
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    return out


def _supervise(request: dict[str, Any]) -> dict[str, Any]:
    """Fork a child for one case; kill it at the deadline; add its peak RSS (``wait4``)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # stdout is the worker's channel
        try:
            result = {"status": "done", **_child(request)}
        except BaseException as exc:
            result = {"status": "crashed", "error": "".join(traceback.format_exception(exc))}
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    chunks: list[bytes] = []
    began = time.monotonic()
    deadline = began + request["timeout"]
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            ready, _, _ = select.select([read_end], [], [], remaining)
            if ready:
                chunk = os.read(read_end, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_end)
    _, status, usage = os.wait4(pid, 0)
    if timed_out:
        result = {"status": "timeout"}
    elif not chunks:
        result = {"status": "died", "wait_status": status}
    else:
        result = json.loads(b"".join(chunks))
    result["peak_rss_kb"] = usage.ru_maxrss
    result["wall_seconds"] = time.monotonic() - began
    return result


def worker_main() -> None:
    """The worker's loop: one JSON request a line on stdin, one JSON result a line on stdout."""
    # Schema validators and every lazy set-up are made once, here, before any fork: one case
    # runs in the worker itself.
    validator("CreateChatCompletionRequest")
    validator("CreateChatCompletionResponse")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "warm.png"
        path.write_bytes(hostile.small_png())
        request = {"detail": "auto", "first_frame": False}
        _prepare_in_child(path, request)
        _inspect_in_child(path.read_bytes())
        _chat_in_child(path.read_bytes(), request)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(_supervise(json.loads(line))), flush=True)


class Worker:
    """The worker process, seen from the test."""

    def __init__(self) -> None:
        code = "from tests.reliability.test_hostile_inputs import worker_main; worker_main()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._read(60.0) == {"ready": True}

    def _read(self, timeout: float) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        assert ready, "the hostile-input worker stopped answering"
        line = stdout.readline()
        assert line, f"the worker died (exit {self.process.poll()})"
        result: dict[str, Any] = json.loads(line)
        return result

    def run(self, **request: Any) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps({"timeout": CASE_TIMEOUT, **request}) + "\n")
        stdin.flush()
        return self._read(CASE_TIMEOUT + 30.0)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    running = Worker()
    yield running
    running.close()


@pytest.fixture(scope="module")
def api_server() -> Iterator[tuple[LocalAfarensisServer, httpx2.Client]]:
    with LocalAfarensisServer(ocr=False) as server:
        headers = {"authorization": f"Bearer {server.api_key}"}
        with httpx2.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            yield server, client


# -- the test ---------------------------------------------------------------------------------


_API_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def _api_format(raw: bytes) -> bool:
    """Whether ``raw`` starts as a PNG, JPEG, GIF or WEBP does: the only formats the API (and
    so the local server) lets Pillow parse; anything else is refused as a format first."""
    return raw.startswith(_API_MAGIC) or (raw[:4] == b"RIFF" and raw[8:12] == b"WEBP")


NOT_EXAMINED = frozenset({"png_exactly_at_pixel_budget"})
"""Images the client prepares (within its 512 MiB budget) but whose raw pixels the local server
does not examine: 10000 x 10000 RGB takes 400 MB decoded, over its image memory. It answers
them from their header, as it does every image sent unprepared (``Case.unprepared``)."""


def _server_must_refuse(case: hostile.Case, raw: bytes, prepared: dict[str, Any]) -> str | None:
    """The code the API refuses these raw bytes with, by its rules, or None if it takes them.

    Its order: over 20 MB, then not one of its formats (a TIFF bomb is a TIFF before it is a
    bomb), then what the data holds.
    """
    if len(raw) > MAX_IMAGE_BYTES:
        return "image_too_large"
    if not _api_format(raw):
        return "invalid_image_format"
    if case.code is not None:
        return case.code
    if prepared["format"] not in API_FORMATS:
        return "invalid_image_format"
    if case.first_frame:
        return "animated_gif_not_supported"
    return None


def _check_prepared(case: hostile.Case, raw: bytes, result: dict[str, Any]) -> PreparedImage:
    assert "refused" not in result, f"refused: {result.get('message')}"
    data = base64.b64decode(result["data"])
    prepared = PreparedImage.from_facts(data, result)
    assert prepared.detail == case.detail
    assert prepared.mime_type in ACCEPTED_MIME_TYPES
    assert 0 < len(data) <= MAX_IMAGE_BYTES
    assert prepared.source_bytes == len(raw)
    assert (data == raw) is not prepared.changed
    assert case.mime is None or prepared.mime_type == case.mime
    assert case.size is None or prepared.size == case.size
    if case.unprepared:  # too large to decode here: sent as it is, for the API
        assert not prepared.changed
        assert prepared.tokens == estimate_image_tokens(*prepared.source_size, case.detail)
        return prepared
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == _FORMAT_OF[prepared.mime_type]
        assert decoded.size == prepared.size
        assert not getattr(decoded, "is_animated", False)
        decoded.load()
    assert prepared.size == effective_size(*prepared.source_size, case.detail)
    assert prepared.tokens == estimate_image_tokens(*prepared.size, case.detail)
    assert case.changed is None or prepared.changed == case.changed
    for check in case.checks:
        check(prepared)
    return prepared


def _post_image(client: httpx2.Client, data: bytes, detail: str) -> httpx2.Response:
    url = f"data:image/png;base64,{base64.b64encode(data).decode()}"
    body = {
        "model": "gpt-4-vision-preview",
        "max_tokens": 300,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": url, "detail": detail}},
                ],
            }
        ],
    }
    return client.post("/chat/completions", json=body)


def _check_bounds(item: Hostile, result: dict[str, Any]) -> None:
    assert result["status"] == "done", result.get("error") or result
    growth = (result["peak_rss_kb"] - result["baseline_rss_kb"]) * 1024
    assert growth <= MEMORY_BUDGET, f"peak RSS grew by {growth / 2**20:.0f} MiB"
    assert result["seconds"] <= TIME_BUDGET, f"took {result['seconds']:.1f}s"
    for part in ("prepare", "inspect"):
        assert not result[part].get("memory_error"), f"{part} hit the address-space cap"
    allowed = ("DecompressionBombWarning", "UnpreparedImageWarning", *item.warns)
    unexpected = [w for w in result["warnings"] if not any(a in w for a in allowed)]
    assert not unexpected, unexpected


@contextlib.contextmanager
def _expected_warnings(item: Hostile) -> Iterator[None]:
    """Let the warnings a case is known to raise (e.g. corrupt EXIF) pass in this process,
    where the suite's filters make warnings errors (the local server runs here too)."""
    with warnings.catch_warnings():
        for text in item.warns:
            warnings.filterwarnings("ignore", message=text)
            warnings.filterwarnings("ignore", category=getattr(Image, text, UserWarning))
        yield


def _check_refused(case: hostile.Case, result: dict[str, Any]) -> None:
    prepared, chat = result["prepare"], result["chat"]
    assert prepared.get("refused") == case.code, prepared
    assert case.message is None or case.message in prepared["message"]
    assert chat == {"refused": case.code, "requests": 0}, "a refused image reached the API"


def _check_sent(
    case: hostile.Case, raw: bytes, result: dict[str, Any], client: httpx2.Client
) -> None:
    """Prepared right, sent as prepared, and accepted by the API at the reported size."""
    out = _check_prepared(case, raw, result["prepare"])
    chat = result["chat"]
    assert chat["requests"] == 1
    assert chat["detail"] == case.detail
    assert chat["sent_sha256"] == hashlib.sha256(out.data_url.encode()).hexdigest()
    response = _post_image(client, out.data, case.detail)
    assert response.status_code == 200, response.text
    answer = response.json()["choices"][0]["message"]["content"]
    assert f"of {out.width} x {out.height} pixels" in answer, answer
    # The real API resizes an image sent as it is; the local server answers it from its header
    # when decoding it would take more than its image memory, and says so.
    assert (PIXELS_NOT_EXAMINED in answer) is case.unprepared, answer
    if case.name in NOT_EXAMINED:
        raw_answer = _post_image(client, raw, case.detail)
        assert raw_answer.status_code == 200, raw_answer.text
        assert PIXELS_NOT_EXAMINED in raw_answer.json()["choices"][0]["message"]["content"]


def _check_unguarded(item: Hostile, raw: bytes, result: dict[str, Any]) -> None:
    """Without Pillow's guard, the package decides the same (its own budgets hold): the same
    refusal, with nothing sent, or the same image prepared (or sent as it is) and sent."""
    case, chat = item.case, result["chat"]
    if case.code is not None:
        _check_refused(case, result)
        return
    out = _check_prepared(case, raw, result["prepare"])
    assert chat["sent_sha256"] == hashlib.sha256(out.data_url.encode()).hexdigest()


@pytest.mark.parametrize("item", [pytest.param(h, id=h.id) for h in CASES])
def test_hostile_image(
    item: Hostile,
    worker: Worker,
    api_server: tuple[LocalAfarensisServer, httpx2.Client],
    tmp_path: Path,
) -> None:
    case = item.case
    raw = case.data()
    path = tmp_path / item.filename
    path.write_bytes(raw)
    result = worker.run(
        path=str(path),
        detail=case.detail,
        first_frame=case.first_frame,
        pillow_guard=item.pillow_guard,
    )
    _check_bounds(item, result)
    if not item.pillow_guard:
        _check_unguarded(item, raw, result)
        return
    _, client = api_server
    with _expected_warnings(item):
        if case.code is not None:
            _check_refused(case, result)
        else:
            _check_sent(case, raw, result, client)
        # What the API must refuse, by its own rules: inspect_image agrees, and so does the
        # local server, with the same code.
        must_refuse = _server_must_refuse(case, raw, result["prepare"])
        assert result["inspect"].get("refused") == must_refuse, result["inspect"]
        if must_refuse is None:
            examined = not case.unprepared and case.name not in NOT_EXAMINED
            assert result["inspect"]["examined"] is examined, result["inspect"]
        if must_refuse is not None:
            response = _post_image(client, raw, case.detail)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == must_refuse, response.text


def test_the_worker_catches_hangs_and_memory_blowups(worker: Worker, tmp_path: Path) -> None:
    """The harness itself: a child over its time is killed; one over its memory cap fails."""
    path = tmp_path / "x.png"
    path.write_bytes(hostile.small_png())
    request = {"path": str(path), "detail": "auto", "first_frame": False, "pillow_guard": True}
    hang = worker.run(**request, timeout=0.5, hang=True)
    assert hang["status"] == "timeout"
    assert hang["wall_seconds"] < 5
    blowup = worker.run(**request, hog=True)
    assert blowup["status"] == "crashed"
    assert "MemoryError" in blowup["error"]
