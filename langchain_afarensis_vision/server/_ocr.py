"""Text in images, with the optional ``ocr`` extra (RapidOCR 3 on ONNX Runtime), fully offline.

``pip install "langchain-afarensis-vision[ocr]"`` installs ``rapidocr`` 3.x and ``onnxruntime``.
The wheel ships the models used here, PP-OCRv6 small detection and recognition (about 30 MB),
and :data:`MODELS` names those files explicitly: RapidOCR downloads a model only when none is
given, so nothing is downloaded at run time (a test reads text with sockets blocked). Without
the extra, :func:`available` is False and the engine says OCR is not available.

Lines are read without the direction classifier: on letter pages of 10-pt print it took about
one upright line in eight for upside-down and read it as noise (measured: 0.96 to 0.87 of the
words found, 1.00 without it). Upside-down lines are not turned. A whole page is read at once,
text at its full length: on pages of 768 x 994 to 1536 x 1988 pixels every word comes back.
Recognition is best on printed Latin and Chinese text; like the real model, it is weak on
very small or rotated text.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import threading
from pathlib import Path
from typing import Any, Final

from PIL import Image, ImageOps

from langchain_afarensis_vision._sources.cache import LRU
from langchain_afarensis_vision._sources.opening import mapped_errors, open_image

MODULE: Final = "rapidocr"
RUNTIME: Final = "onnxruntime"
MODELS: Final = {
    "Det.model_path": "PP-OCRv6_det_small.onnx",
    "Rec.model_path": "PP-OCRv6_rec_small.onnx",
    "Cls.model_path": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",  # off (use_cls False); pinned too
}
"""RapidOCR's parameters naming its models, each a file in the wheel's ``models`` folder."""
INSTALL_HINT: Final = 'pip install "langchain-afarensis-vision[ocr]"'
MAX_SIDE: Final = 1600
"""Larger images are shrunk to this before OCR: enough for text a person can read (10-pt
print on a letter page at 1600 pixels is 20 pixels high)."""
MIN_SIDE: Final = 16
DETECTION_MIN_SIDE: Final = 320
"""Detection enlarges an image whose short side is under this to it (RapidOCR's default, 736,
split 40-pixel print in a 400 x 120 image into two lines, and took 2-4 times as long on small
images; 7-pt print in a 307 x 170 image is read as well at 320)."""
MIN_SCORE: Final = 0.5
_CACHE_ENTRIES: Final = 128
_WORDLIKE = re.compile(r"[^\W_]")
"""A line without a letter or digit is noise read in a photo ("***", "￥**"): left out."""

_texts: LRU[bytes, str] = LRU(_CACHE_ENTRIES)
_run_lock = threading.Lock()  # one recognition at a time: it already uses every core


@functools.cache
def available() -> bool:
    """Whether the OCR extra is installed."""
    return all(importlib.util.find_spec(name) is not None for name in (MODULE, RUNTIME))


@functools.cache
def _engine() -> Any:
    module = importlib.import_module(MODULE)
    folder = Path(str(module.__file__)).parent / "models"
    params: dict[str, Any] = {name: str(folder / file) for name, file in MODELS.items()}
    params |= {
        "Global.use_cls": False,
        "Global.log_level": "error",
        "Det.limit_side_len": DETECTION_MIN_SIDE,
    }
    return module.RapidOCR(params=params)


def warm() -> None:
    """Load the OCR models now (about 1.5 s), not on the first image read.

    Loading holds the interpreter's lock for long steps: a server's other requests would wait.
    """
    _engine()


def read_text(data: bytes, digest: bytes) -> str:
    """The text found in an image, lines joined by newlines ("" if none); needs the extra."""
    return _texts.get_or_make(digest, lambda: _recognise(data))


def _recognise(data: bytes) -> str:
    with mapped_errors(), open_image(data) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    if min(image.size) < MIN_SIDE or _one_colour(image):
        return ""
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    with _run_lock:
        result = _engine()(image)
    found = zip(result.txts or (), result.scores or (), strict=True)
    lines = [str(text).strip() for text, score in found if float(score) >= MIN_SCORE]
    return "\n".join(line for line in lines if _WORDLIKE.search(line))


def _one_colour(image: Image.Image) -> bool:
    """Whether every pixel of an RGB image is the same: no text to read (not worth a run)."""
    bands: Any = image.getextrema()
    return all(low == high for low, high in bands)
