"""Reading an image source safely: a path, bytes, a file object or a data URL in, bytes out.

A source is a path, bytes, a binary file object or a ``data:`` URL. Inputs are untrusted:
encoded inputs over :data:`MAX_INPUT_BYTES` are refused before they are read, and a path must
name a regular file (opened non-blocking: a FIFO is refused, never waited on). Opening the bytes
as an image is :mod:`.opening`'s. Every failure is an :class:`~.errors.InvalidImageError` with
the API's own code.
"""

from __future__ import annotations

import binascii
import contextlib
import io
import os
import stat
import urllib.parse
from typing import BinaryIO, Final, TypeAlias

from PIL import Image

from langchain_afarensis_vision._api.contract import (
    ErrorCode,
    has_scheme,
    is_data_url,
    url_scheme,
)
from langchain_afarensis_vision.errors import InvalidImageError, InvalidRequestError

__all__ = [
    "MAX_INPUT_BYTES",
    "ImageSource",
    "decode_base64",
    "decode_data_url",
    "not_a_url",
    "read_source",
    "too_large",
]

MAX_INPUT_BYTES: Final = 64 * 1024 * 1024
"""Larger encoded inputs are refused (``image_too_large``) before they are read or decoded."""
ImageSource: TypeAlias = (
    "str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO | Image.Image"
)
_O_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_CHUNK: Final = 1024 * 1024  # file objects are read in pieces: no 64 MiB buffer up front
_BASE64_WINDOW: Final = 1024 * 1024  # characters (a multiple of 4) of base64 decoded at once
_LOCAL_FILE_HINT: Final = (
    "A local file goes as prepare_image(path).data_url (a data: URL), or put "
    "prepare_image(path).content_block() in the message."
)


def too_large(what: str) -> InvalidImageError:
    """An ``image_too_large`` refusal."""
    return InvalidImageError(what, code=ErrorCode.IMAGE_TOO_LARGE)


# -- bytes -----------------------------------------------------------------------------------


def read_source(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO,
) -> bytes:
    """The encoded bytes of a path, bytes, binary file object or ``data:`` URL (size-capped)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str) and is_data_url(source):
        data = decode_data_url(source)
    elif isinstance(source, str) and _is_url(source) and not os.path.exists(source):
        raise _url_given(source)
    elif isinstance(source, str | os.PathLike):
        data = _read_file(source)
    elif callable(getattr(source, "read", None)):
        data = _read_file_object(source)
    else:
        msg = (
            "expected a path, bytes, a binary file object, a data: URL or a PIL image; "
            f"got {type(source).__name__}"
        )
        raise TypeError(msg)
    if len(data) > MAX_INPUT_BYTES:
        raise too_large(f"image data is over {MAX_INPUT_BYTES:,} bytes; at most that is read")
    return data


def _read_file(path: str | os.PathLike[str]) -> bytes:
    # Non-blocking: opening a FIFO for reading would otherwise wait for a writer forever.
    fd = os.open(path, _O_READ)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            msg = f"{os.fspath(path)!r} is not a regular file (a FIFO, device or directory)"
            raise InvalidImageError(msg)
    except BaseException:
        os.close(fd)
        raise
    with open(fd, "rb") as file:
        if info.st_size > MAX_INPUT_BYTES:
            raise too_large(f"{os.fspath(path)!r} is larger than {MAX_INPUT_BYTES:,} bytes")
        # Bounded even for a growing file or one of unknown size (/proc), and no 64 MiB buffer
        # for a small one (read(n) reserves n bytes up front); the caller refuses the excess.
        return file.read(info.st_size + 1) if info.st_size else file.read(MAX_INPUT_BYTES + 1)


def _read_file_object(file: BinaryIO) -> bytes:
    """What is left in a binary file object, in pieces, at most ``MAX_INPUT_BYTES + 1`` bytes.

    A regular file too large is refused from its size before it is read; a raw stream that
    returns short reads (a pipe) is read to its end.
    """
    if isinstance(file, io.TextIOBase) or "b" not in getattr(file, "mode", "b"):
        raise _text_mode()
    left = 0
    with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):  # no fileno()
        info = os.fstat(file.fileno())
        left = info.st_size - file.tell() if stat.S_ISREG(info.st_mode) else 0
    if left > MAX_INPUT_BYTES:
        raise too_large(f"the file object holds more than {MAX_INPUT_BYTES:,} bytes")
    data = bytearray()
    while len(data) <= MAX_INPUT_BYTES:
        piece = file.read(min(_CHUNK, MAX_INPUT_BYTES + 1 - len(data)))
        if isinstance(piece, str):
            raise _text_mode()
        if piece is None:  # a non-blocking raw stream with nothing to read now
            raise InvalidImageError("the file object has no data ready (a non-blocking stream)")
        if not isinstance(piece, bytes | bytearray | memoryview):
            msg = f"the file object's read() returned {type(piece).__name__}, not bytes"
            msg += " (an async file? read it and pass the bytes)"
            raise TypeError(msg)
        if not piece:
            break
        data += piece
    return bytes(data)


def _text_mode() -> TypeError:
    return TypeError(
        "expected a binary file object: open the file with open(path, 'rb'), or pass the path "
        "itself; this one is in text mode"
    )


def not_a_url(url: str) -> InvalidRequestError:
    """The refusal of ``url`` as an image URL (not http(s) or data:), saying what to do."""
    scheme, shown = url_scheme(url), repr(url[:80]) + ("..." if len(url) > 80 else "")
    if not has_scheme(url):
        msg = f"Image URLs must be http(s) or data: URLs; {shown} looks like a local path. "
        return InvalidRequestError(msg + _LOCAL_FILE_HINT)
    msg = f"Image URLs must be http(s) or data: URLs; got scheme {scheme!r} in {shown}."
    if scheme == "file":
        msg += " The API cannot read this machine's files. " + _LOCAL_FILE_HINT
    return InvalidRequestError(msg)


def _is_url(text: str) -> bool:
    return has_scheme(text) and text.partition(":")[2].startswith("//")


def _url_given(url: str) -> InvalidRequestError:
    msg = (
        f"prepare_image takes paths, bytes, file objects, PIL images and data: URLs, not "
        f"{url_scheme(url)}: URLs ({url[:80]!r}). Put an http(s) URL in the message as it is, "
        "{'type': 'image_url', 'image_url': {'url': ...}}: the API fetches it. Or download it "
        "and pass the bytes."
    )
    return InvalidRequestError(msg)


def decode_data_url(url: str) -> bytes:
    """The bytes of a ``data:`` URL (base64 or percent-encoded); its declared type is ignored."""
    header, comma, payload = url.partition(",")
    if not comma:
        raise InvalidImageError("malformed data URL: no ',' before the data")
    if not header.lower().endswith(";base64"):
        return urllib.parse.unquote_to_bytes(payload)
    return decode_base64(payload)


def decode_base64(text: str) -> bytes:
    """Strict base64 (line breaks allowed), refusing anything else with ``invalid_image``."""
    try:
        try:
            return _strict_base64(text)  # the usual case: one unbroken line
        except binascii.Error:
            return _strict_base64("".join(text.split()))
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageError(f"image base64 data is not valid base64: {exc}") from exc


def _strict_base64(text: str) -> bytes:
    """Strict base64, decoded :data:`_BASE64_WINDOW` characters at a time.

    So a 20 MB image never holds the interpreter's lock for long (a server answers meanwhile).
    """
    pieces = []
    for at in range(0, len(text), _BASE64_WINDOW):
        window = text[at : at + _BASE64_WINDOW]
        if "=" in window and at + _BASE64_WINDOW < len(text):
            raise binascii.Error("Excess data after padding")
        pieces.append(binascii.a2b_base64(window, strict_mode=True))
    return b"".join(pieces)
