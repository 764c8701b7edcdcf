"""Where an encoded image really ends: the container walked, no pixel decoded.

A pixel decoder stops at its image's end, so Pillow cannot tell whether something follows it:
a ZIP, a script. :func:`image_end` walks the container instead (PNG chunks, JPEG segments and
entropy-coded data, GIF blocks, the RIFF size of a WEBP), so that a file with an appended
payload is never sent as it is (``images`` re-encodes it).
"""

from __future__ import annotations

__all__ = ["image_end"]


def image_end(fmt: str, data: bytes) -> int | None:
    """Where the image in ``data`` ends; None if it never ends properly.

    It walks the container: PNG chunks, JPEG segments, GIF blocks, the RIFF size of a WEBP. Data
    after that point is not part of the image (a ZIP, a script): such a file is never sent
    as it is. A pixel decoder stops at its image's end, so Pillow cannot tell this itself.
    """
    try:
        return _ENDS[fmt](data)
    except (IndexError, KeyError, ValueError):
        return None


def _png_end(data: bytes) -> int | None:
    at = 8
    while at + 12 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, at = data[at + 4 : at + 8], at + 12 + length
        if kind == b"IEND":
            return at if at <= len(data) else None
    return None


def _jpeg_end(data: bytes) -> int | None:
    at = 2  # after SOI
    while True:
        while data[at] == 0xFF and data[at + 1] == 0xFF:  # fill bytes
            at += 1
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xD9:  # EOI
            return at + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers
            at += 2
            continue
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == 0xDA:  # SOS: entropy-coded data up to the next real marker
            at = _next_marker(data, at)


def _next_marker(data: bytes, at: int) -> int:
    """The next 0xFF that starts a marker (not a stuffed 0xFF00 or a restart marker)."""
    while True:
        at = data.index(b"\xff", at)
        follower = data[at + 1]
        if follower != 0x00 and not 0xD0 <= follower <= 0xD7:
            return at
        at += 2


def _gif_end(data: bytes) -> int | None:
    at = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while True:
        block = data[at]
        if block == 0x3B:  # trailer
            return at + 1
        if block == 0x21:  # extension: label, then sub-blocks
            at = _after_sub_blocks(data, at + 2)
        elif block == 0x2C:  # image: descriptor, local colour table, LZW size, sub-blocks
            flags = data[at + 9]
            at += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            at = _after_sub_blocks(data, at + 1)
        else:
            return None


def _after_sub_blocks(data: bytes, at: int) -> int:
    while (size := data[at]) != 0:
        at += 1 + size
    return at + 1


def _webp_end(data: bytes) -> int | None:
    riff_size = int.from_bytes(data[4:8], "little")
    return 8 + riff_size + (riff_size & 1)


_ENDS = {"PNG": _png_end, "JPEG": _jpeg_end, "GIF": _gif_end, "WEBP": _webp_end}
