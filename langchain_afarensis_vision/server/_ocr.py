"""Text in images, with the optional ``ocr`` extra (RapidOCR on ONNX Runtime), fully offline.

``pip install "langchain-afarensis-vision[ocr]"`` installs ``rapidocr-onnxruntime`` 1.4, whose
wheel ships its three PP-OCRv4 ONNX models (detection, direction, recognition; about 15 MB):
nothing is downloaded at run time. Without the extra, :func:`available` is False and the engine
says OCR is not available. Recognition is best on printed Latin and Chinese text; like the real
model, it is weak on very small or rotated text.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import io
import threading
from typing import Any, Final

from PIL import Image, ImageOps

from langchain_afarensis_vision._sources.cache import LRU
from langchain_afarensis_vision._sources.opening import mapped_errors, open_image

MODULE: Final = "rapidocr_onnxruntime"
INSTALL_HINT: Final = 'pip install "langchain-afarensis-vision[ocr]"'
MAX_SIDE: Final = 1600
"""Larger images are shrunk to this before OCR: enough for text a person can read."""
MIN_SIDE: Final = 16
MIN_SCORE: Final = 0.5
MAX_CHARS: Final = 2000
_CACHE_ENTRIES: Final = 128

_texts: LRU[bytes, str] = LRU(_CACHE_ENTRIES)
_run_lock = threading.Lock()  # one recognition at a time: it already uses every core


@functools.cache
def available() -> bool:
    """Whether the OCR extra is installed."""
    return importlib.util.find_spec(MODULE) is not None


@functools.cache
def _engine() -> Any:
    module = importlib.import_module(MODULE)
    return module.RapidOCR()


def read_text(data: bytes, digest: bytes) -> str:
    """The text found in an image, lines joined by newlines ("" if none); needs the extra."""
    return _texts.get_or_make(digest, lambda: _recognise(data))


def _recognise(data: bytes) -> str:
    with mapped_errors(), open_image(data) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    if min(image.size) < MIN_SIDE:
        return ""
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    with _run_lock:
        result, _ = _engine()(buffer.getvalue())
    lines = [str(text) for _box, text, score in result or [] if float(score) >= MIN_SCORE]
    text = "\n".join(line.strip() for line in lines if line.strip())
    return text[:MAX_CHARS]
