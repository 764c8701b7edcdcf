"""What an encoded image declares, read from its first bytes without Pillow; can its data hold it.

A WEBP's canvas (:func:`webp_canvas`) is read here because Pillow's WEBP opener has libwebp
allocate the whole canvas as it opens the file. And a header that declares more pixels than its
data could possibly hold (:func:`check_enough_data`) is truncated or broken, however large: each
of these formats has a best possible compression (deflate stands 258 bytes in 2 bits; an LZW
code of GIF's at most 12 bits stands for at most 4096 pixels; a Huffman-coded JPEG spends at
least a bit on every 8x8 block), so a 69-byte PNG declaring 10,000 x 10,000 pixels is refused
``invalid_image`` at once, with nothing decoded. (WEBP and arithmetic-coded JPEG have no such
bound: their entropy coders may spend less than a bit on a whole block.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from langchain_afarensis_vision.errors import InvalidImageError

__all__ = ["check_enough_data", "webp_animated", "webp_canvas"]

_DEFLATE_MOST: Final = 1032  # bytes out for one byte in, at best
_LZW_PIXELS_A_BYTE: Final = 4096 * 8 // 12 + 1
_JPEG_PIXELS_A_BYTE: Final = 8 * 64  # one bit for each block of 64 pixels
_PNG_CHANNELS: Final = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # by colour type
_ARITHMETIC_SOF: Final = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_SOF: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7}) | _ARITHMETIC_SOF
_NO_LENGTH: Final = frozenset({0x01, *range(0xD0, 0xDA)})  # TEM, RSTn, SOI, EOI
_VP8X_ANIMATION: Final = 0x02


def webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The canvas a WEBP declares (lossy, lossless or extended), read from its first 30 bytes.

    Pillow's WEBP opener has libwebp allocate the whole canvas (twice) as it opens the file,
    before anything can look at its size: it is read here first. None for other data.
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    kind, at = data[12:16], 20
    if kind == b"VP8X":  # 24-bit sides, minus one
        width = int.from_bytes(data[at + 4 : at + 7], "little")
        return width + 1, int.from_bytes(data[at + 7 : at + 10], "little") + 1
    if kind == b"VP8L":  # 14-bit sides, minus one, after the signature byte
        bits = int.from_bytes(data[at + 1 : at + 5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":  # 14-bit sides after the frame tag and the start code
        width = int.from_bytes(data[at + 6 : at + 8], "little") & 0x3FFF
        return width, int.from_bytes(data[at + 8 : at + 10], "little") & 0x3FFF
    return None


def webp_animated(data: bytes) -> bool:
    """Whether a WEBP's extended header says it is animated."""
    return data[12:16] == b"VP8X" and len(data) > 20 and bool(data[20] & _VP8X_ANIMATION)


def check_enough_data(data: bytes) -> None:
    """Refuse (``invalid_image``) a PNG, GIF or JPEG too short for the pixels it declares."""
    declared = _png(data) or _gif(data) or _jpeg(data)
    if declared is None:
        return
    kind, (width, height), pixels_a_byte = declared
    if width * height > len(data) * pixels_a_byte:
        msg = (
            f"image data is truncated: the {kind} header declares {width}x{height} pixels, "
            f"more than its {len(data):,} bytes can hold at best ({pixels_a_byte:,} pixels a "
            "byte); send the whole file"
        )
        raise InvalidImageError(msg)


_Declared = tuple[str, tuple[int, int], int] | None


def _png(data: bytes) -> _Declared:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 26:
        return None
    bits = data[24] * _PNG_CHANNELS.get(data[25], 4)
    size = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return "PNG", size, -(-_DEFLATE_MOST * 8 // max(bits, 1))


def _gif(data: bytes) -> _Declared:
    """The first frame's extent (the logical screen may be larger: the frame is what is coded)."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return None
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while at < len(data) and data[at] == 0x21:  # extensions: label, then sub-blocks to a 0
        at += 2
        while at < len(data) and data[at]:
            at += data[at] + 1
        at += 1
    if at + 9 > len(data) or data[at] != 0x2C:
        return None
    size = (
        int.from_bytes(data[at + 5 : at + 7], "little"),
        int.from_bytes(data[at + 7 : at + 9], "little"),
    )
    return "GIF", size, _LZW_PIXELS_A_BYTE


def _jpeg(data: bytes) -> _Declared:
    for marker, body in _jpeg_segments(data):
        if marker in _SOF and len(body) >= 5:
            if marker in _ARITHMETIC_SOF:
                return None
            height, width = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big")
            return "JPEG", (width, height), _JPEG_PIXELS_A_BYTE
    return None


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """A JPEG's marker segments before its first scan: (marker, body)."""
    if data[:2] != b"\xff\xd8":
        return
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _NO_LENGTH:
            at += 2
            continue
        if marker == 0xDA:
            return
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        yield marker, data[at + 4 : at + 2 + length]
        at += 2 + length
