"""The heavy pixel work of :mod:`.images`, spread over the machine's cores.

Pillow runs each resize and each PNG encode on one core, but releases the GIL while it works,
and so does zlib. Both therefore run in strips, shared by the calling thread and a small pool,
and give the same bytes whatever the number of cores:

* :func:`resize` is Pillow's resample as two passes, rows then columns, as ``Image.resize``
  does them: each pass is cut across its direction (rows in strips of rows, then columns in
  strips of columns) and each strip is one Pillow call over the whole box, with the
  coefficients the whole image would get, so the strips join without a seam.
* :func:`encode_png` writes a PNG of exactly the image's pixels: Pillow filters each strip
  (libpng's adaptive row filters) with one row of overlap, so a strip's first row is filtered
  against its real predecessor; the filtered rows are then deflated in fixed chunks, each
  primed with the 32 KiB before it and flushed to a byte boundary (as pigz does), with the
  strategy a sample of the rows prefers (run-length for photographs, the default for drawings
  and text).

Small work (below about 128K pixels a strip) stays in the calling thread. The pool is rebuilt
after ``fork`` (a child process does not inherit its threads).
"""

from __future__ import annotations

import concurrent.futures
import io
import itertools
import math
import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from PIL import Image

__all__ = ["PNG_MODES", "encode_png", "resize", "run_all", "start", "workers"]

_T = TypeVar("_T")

PNG_MODES: Final = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}
"""The modes :func:`encode_png` writes, with their PNG colour types (8 bits a sample)."""

_MAX_WORKERS = 8
_MIN_STRIP_PIXELS = 128 * 1024  # less work than this per strip is not worth a thread
_SUPPORT: Final = {  # Pillow's filter supports, for the box reduce() must cover
    Image.Resampling.BOX: 0.5,
    Image.Resampling.BILINEAR: 1.0,
    Image.Resampling.HAMMING: 1.0,
    Image.Resampling.BICUBIC: 2.0,
    Image.Resampling.LANCZOS: 3.0,
}
_PREMULTIPLIED: Final = {"RGBA": "RGBa", "LA": "La"}  # what Pillow resamples them in
_WINDOW = 32 * 1024  # deflate's window: what a chunk is primed with
_SAMPLE = 32 * 1024  # four slices of this many filtered bytes choose the deflate strategy
_CHUNK = 256 * 1024  # filtered bytes deflated as one piece
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def workers() -> int:
    """The cores this process may run on (at most 8)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


def run_all(calls: Sequence[Callable[[], _T]]) -> list[_T]:
    """Results of ``calls`` in order, computed by this thread and the pool's, sharing the list.

    Every call has ended when this returns or raises (the first error is raised), so nothing
    keeps working on a caller's image after it got an answer.
    """
    if len(calls) <= 1:
        return [call() for call in calls]
    results: list[_T | None] = [None] * len(calls)
    errors: list[BaseException | None] = [None] * len(calls)
    pending = iter(range(len(calls)))
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = calls[index]()
            except BaseException as exc:  # re-raised in the caller's thread below
                errors[index] = exc

    helpers = min(len(calls), workers()) - 1
    futures = [_executor().submit(drain) for _ in range(helpers)]
    drain()
    # A helper still queued behind other callers' work is not needed: cancel it, and wait only
    # for the ones already running (they are finishing their last call).
    concurrent.futures.wait([future for future in futures if not future.cancel()])
    if (error := next((e for e in errors if e is not None), None)) is not None:
        raise error
    return results  # type: ignore[return-value]  # every slot was filled: no error


def start(call: Callable[[], _T]) -> concurrent.futures.Future[_T]:
    """Run ``call`` on the pool, now: for work that overlaps with the caller's own."""
    return _executor().submit(call)


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = concurrent.futures.ThreadPoolExecutor(
                max(1, workers() - 1), thread_name_prefix="afarensis-pixels"
            )
            _pool_pid = os.getpid()
        return _pool


def _strips(rows: int, work: int) -> list[tuple[int, int]]:
    """Split ``rows`` into up to :func:`workers` runs of about equal ``work`` (pixels)."""
    count = max(1, min(workers(), work // _MIN_STRIP_PIXELS, rows // 16))
    bounds = [rows * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def resize(
    image: Image.Image,
    size: tuple[int, int],
    resample: Image.Resampling,
    *,
    box: tuple[float, float, float, float] | None = None,
    reducing_gap: float | None = None,
) -> Image.Image:
    """``image.resize(size, resample, box, reducing_gap)``, computed in strips on the pool."""
    if resample not in _SUPPORT or image.mode in {"1", "P"}:
        return image.resize(size, resample, box=box, reducing_gap=reducing_gap)
    if (straight := image.mode) in _PREMULTIPLIED:
        out = resize(image.convert(_PREMULTIPLIED[straight]), size, resample, box=box,
                     reducing_gap=reducing_gap)  # fmt: skip
        return out.convert(straight)
    image.load()
    x0, y0, x1, y1 = box or (0, 0, *image.size)
    if reducing_gap is not None:  # Pillow's own reduce() step, on the whole image first
        fx = int((x1 - x0) / size[0] / reducing_gap) or 1
        fy = int((y1 - y0) / size[1] / reducing_gap) or 1
        if fx > 1 or fy > 1:
            rx0, ry0, rx1, ry1 = _safe_box(image.size, size, resample, (x0, y0, x1, y1))
            image = _reduce(image, (fx, fy), (rx0, ry0, rx1, ry1))
            x0, y0, x1, y1 = (x0 - rx0) / fx, (y0 - ry0) / fy, (x1 - rx0) / fx, (y1 - ry0) / fy
    return _two_passes(image, size, resample, (x0, y0, x1, y1))


def _two_passes(
    image: Image.Image,
    size: tuple[int, int],
    resample: Image.Resampling,
    box: tuple[float, float, float, float],
) -> Image.Image:
    """Resample rows (in strips of rows), then columns (in strips of columns).

    These are Pillow's own two passes, each a Pillow call over the whole box, so cutting a pass
    across its direction changes no pixel, and the result does not depend on the number of
    cores. Rows go first, as Pillow has always done them (and still does for photos); Pillow
    13 takes columns first when the height shrinks much more than the width, which rounds
    some pixels differently in between.
    """
    (x0, y0, x1, y1), (width, height) = box, size
    source_width, source_height = image.size
    across = (x0, x1, width) != (0, source_width, source_width)
    down = (y0, y1, height) != (0, source_height, source_height)
    if across:
        # Only the rows the column pass reads (with margin: the same rows reach the same edge).
        reach = _SUPPORT[resample] * max(1.0, (y1 - y0) / height)
        rows = min(source_height, math.ceil(y1 + reach) + 1) if down else source_height
        image = _across(image, resample, (x0, x1), width, rows)
    if down:
        return _down(image, resample, (y0, y1), height)
    return image if across else image.copy()


def _across(
    image: Image.Image,
    resample: Image.Resampling,
    span: tuple[float, float],
    width: int,
    rows: int | None = None,
) -> Image.Image:
    """The row pass: the first ``rows`` rows resampled to ``width`` from ``span`` of columns."""
    (x0, x1), source_width = span, image.width
    rows = image.height if rows is None else rows

    def band(top: int, bottom: int) -> Image.Image:
        part = _part(image, (0, top, source_width, bottom))
        return part.resize((width, bottom - top), resample, box=(x0, 0, x1, bottom - top))

    strips = _strips(rows, width * rows)
    parts = run_all([_bind(band, *strip) for strip in strips])
    return _stacked(image.mode, (width, rows), [(0, top) for top, _ in strips], parts)


def _down(
    image: Image.Image, resample: Image.Resampling, span: tuple[float, float], height: int
) -> Image.Image:
    """The column pass: every column resampled to ``height`` from ``span`` of its rows."""
    (y0, y1), (columns, source_height) = span, image.size

    def band(left: int, right: int) -> Image.Image:
        part = _part(image, (left, 0, right, source_height))
        return part.resize((right - left, height), resample, box=(0, y0, right - left, y1))

    strips = _strips(columns, columns * height)
    parts = run_all([_bind(band, *strip) for strip in strips])
    return _stacked(image.mode, (columns, height), [(left, 0) for left, _ in strips], parts)


def _part(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """``image.crop(box)``, or ``image`` itself when the box is all of it (no copy)."""
    return image if box == (0, 0, *image.size) else image.crop(box)


def _safe_box(
    full: tuple[int, int],
    size: tuple[int, int],
    resample: Image.Resampling,
    box: tuple[float, float, float, float],
) -> tuple[int, int, int, int]:
    """``Image._get_safe_box``: ``box`` widened by the pixels the filter reaches."""
    support = _SUPPORT[resample] - 0.5
    sx = support * (box[2] - box[0]) / size[0]
    sy = support * (box[3] - box[1]) / size[1]
    return (
        max(0, int(box[0] - sx)),
        max(0, int(box[1] - sy)),
        min(full[0], math.ceil(box[2] + sx)),
        min(full[1], math.ceil(box[3] + sy)),
    )


def _reduce(
    image: Image.Image, factor: tuple[int, int], box: tuple[int, int, int, int]
) -> Image.Image:
    """``image.reduce(factor, box=box)`` in strips of whole blocks (so the same blocks)."""
    fx, fy = factor
    x0, y0, x1, y1 = box
    rows = -(-(y1 - y0) // fy)
    strips = _strips(rows, (x1 - x0) * (y1 - y0))
    if len(strips) == 1:
        return image.reduce(factor, box=box)

    def strip(top: int, bottom: int) -> Image.Image:
        return image.reduce(factor, box=(x0, y0 + top * fy, x1, min(y1, y0 + bottom * fy)))

    size = (-(-(x1 - x0) // fx), rows)
    parts = run_all([_bind(strip, *s) for s in strips])
    return _stacked(image.mode, size, [(0, top) for top, _ in strips], parts)


def _bind(function: Callable[[int, int], _T], top: int, bottom: int) -> Callable[[], _T]:
    return lambda: function(top, bottom)


def _stacked(
    mode: str, size: tuple[int, int], corners: list[tuple[int, int]], parts: list[Image.Image]
) -> Image.Image:
    """One image of ``size`` made of ``parts``, each at its corner."""
    out = Image.new(mode, size)
    for corner, part in zip(corners, parts, strict=True):
        out.paste(part, corner)
    return out


def encode_png(image: Image.Image, icc: bytes | None, level: int) -> bytes:
    """A PNG of ``image`` (a mode of :data:`PNG_MODES`), zlib ``level`` for drawings."""
    width, height = image.size
    stride = width * len(image.getbands())
    image.load()

    def filtered(top: int, bottom: int) -> bytes:
        start = max(0, top - 1)  # the row above: the first row's filter needs it
        rows = _filtered_rows(image.crop((0, start, width, bottom)))
        return rows[(top - start) * (stride + 1) :]

    strips = _strips(height, width * height)
    data = b"".join(run_all([_bind(filtered, *s) for s in strips]))
    # Fixed chunks, not one per core: the same image gives the same bytes on every machine.
    bounds = [*range(0, len(data), _CHUNK), len(data)]
    deflate = _deflater(data, level, _strategy(memoryview(data), level))
    deflated = run_all([_bind(deflate, *c) for c in itertools.pairwise(bounds)])
    stream = b"".join(
        [zlib.compress(b"", level)[:2], *deflated, struct.pack(">I", zlib.adler32(data))]
    )
    header = struct.pack(">IIBBBBB", width, height, 8, PNG_MODES[image.mode], 0, 0, 0)
    parts = [_PNG_SIGNATURE, _chunk(b"IHDR", header)]
    if icc is not None:
        parts.append(_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    parts += [_chunk(b"IDAT", stream), _chunk(b"IEND", b"")]
    return b"".join(parts)


def _filtered_rows(image: Image.Image) -> bytes:
    """Pillow's filtered scanlines of ``image``: a PNG at level 0 (stored blocks), unpacked."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=0)
    png = buffer.getbuffer()
    stream, at = [], len(_PNG_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack_from(">I", png, at)
        if bytes(png[at + 4 : at + 8]) == b"IDAT":
            stream.append(png[at + 8 : at + 8 + length])
        at += 12 + length
    return zlib.decompress(b"".join(stream))


def _deflater(data: bytes, level: int, strategy: int) -> Callable[[int, int], bytes]:
    """Deflates ``data[start:end]`` as one piece of a raw deflate stream of all of ``data``."""
    view = memoryview(data)

    def deflate(start: int, end: int) -> bytes:
        piece = view[start:end]
        window = bytes(view[max(0, start - _WINDOW) : start])
        packer = (
            zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy, zdict=window)
            if window
            else zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        )
        last = end == len(data)
        return packer.compress(piece) + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    return deflate


def _strategy(data: memoryview, level: int) -> int:
    """Run-length (fast, best on noisy photographs) or default (best on drawings and text).

    Whichever packs four slices of ``data`` smaller.
    """
    step = max(1, len(data) // 4)
    sample = b"".join(data[i : i + _SAMPLE] for i in range(step // 2, len(data), step))
    sizes: dict[int, int] = {}
    for strategy in (zlib.Z_RLE, zlib.Z_DEFAULT_STRATEGY):
        packer = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        sizes[strategy] = len(packer.compress(sample) + packer.flush())
    return min(sizes, key=lambda strategy: (sizes[strategy], strategy != zlib.Z_RLE))


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return b"".join([struct.pack(">I", len(body)), kind, body, struct.pack(">I", crc)])
