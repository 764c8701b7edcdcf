"""What can honestly be measured in an image's pixels: colours, brightness, transparency.

The image is first shrunk to at most :data:`SAMPLE_SIDE` pixels a side (JPEGs are decoded
straight at a fraction of their size; L, LA, RGB and RGBA are shrunk before any conversion, so
no full-size copy is made of them), so the cost is small and nearly the same for any image.
Each sampled pixel is named from a small palette by its hue, saturation and value (see
:func:`colour_name`); the answer reports the commonest names and their shares of the opaque
pixels. Results are remembered by the image's content digest.
"""

from __future__ import annotations

import colorsys
import functools
from collections import Counter
from dataclasses import dataclass
from typing import Final

from PIL import Image

from langchain_afarensis_vision._sources.cache import LRU
from langchain_afarensis_vision._sources.opening import ALPHA_MODES, mapped_errors, open_image

SAMPLE_SIDE: Final = 48
OPAQUE_ALPHA: Final = 128
"""Pixels with at least this alpha count as visible when colours and brightness are measured."""
_HUES: Final = (
    (15, "red"),
    (40, "orange"),
    (70, "yellow"),
    (160, "green"),
    (200, "teal"),
    (260, "blue"),
    (315, "purple"),
    (345, "pink"),
    (360, "red"),
)
_CACHE_ENTRIES: Final = 512
_SHRUNK_AS_THEY_ARE: Final = frozenset({"L", "LA", "RGB", "RGBA"})


@dataclass(frozen=True, slots=True)
class PixelFacts:
    """Measured facts; ``colours`` are ``(name, share)`` pairs, commonest first."""

    colours: tuple[tuple[str, float], ...]
    brightness: str
    mean_luma: float
    alpha: bool
    transparent_share: float

    @property
    def transparency(self) -> str:
        """``none`` (no alpha channel), ``opaque``, ``partial`` or ``full``."""
        if not self.alpha:
            return "none"
        if self.transparent_share == 0:
            return "opaque"
        return "full" if self.transparent_share >= 1 else "partial"


@functools.lru_cache(maxsize=4096)
def colour_name(red: int, green: int, blue: int) -> str:
    """The palette name of an RGB colour (0-255 channels), by hue, saturation and value."""
    hue, saturation, value = colorsys.rgb_to_hsv(red / 255, green / 255, blue / 255)
    degrees = hue * 360
    if value < 0.2:
        return "black"
    if saturation < 0.15 or (saturation < 0.25 and value < 0.35):
        return "white" if value > 0.85 else "grey"
    name = next(label for limit, label in _HUES if degrees < limit)
    if name in {"orange", "yellow"} and (value < 0.6 or (name == "orange" and saturation < 0.5)):
        return "brown"
    if name == "red" and value < 0.6 and saturation < 0.6:
        return "brown"
    if name == "red" and saturation < 0.5 and value > 0.7:
        return "pink"
    return name


def brightness_word(luma: float) -> str:
    """``dark``, ``medium`` or ``bright`` for a mean luma in 0-255."""
    if luma < 85:
        return "dark"
    return "medium" if luma < 170 else "bright"


_facts: LRU[bytes, PixelFacts] = LRU(_CACHE_ENTRIES)


def analyse(data: bytes, digest: bytes) -> PixelFacts:
    """Measure an image already accepted by ``inspect_image`` (first frame of a GIF)."""
    return _facts.get_or_make(digest, lambda: _measure(sample(data)))


def sample(data: bytes, side: int = SAMPLE_SIDE) -> tuple[Image.Image, bool]:
    """The image shrunk to fit ``side`` x ``side`` in RGBA, and whether it has an alpha channel.

    The first frame of a GIF; not oriented (colours and brightness do not depend on it).
    """
    with mapped_errors(), open_image(data) as image:
        if image.format == "JPEG":
            image.draft("RGB", (side, side))
        return _shrunk(image, side)


def _shrunk(image: Image.Image, side: int = SAMPLE_SIDE) -> tuple[Image.Image, bool]:
    alpha = image.mode in ALPHA_MODES or "transparency" in image.info
    small = image
    if image.mode not in _SHRUNK_AS_THEY_ARE or "transparency" in image.info:
        small = image.convert("RGBA" if alpha else "RGB")
    small.thumbnail((side, side), Image.Resampling.BOX)
    return small.convert("RGBA"), alpha


def measure_decoded(image: Image.Image, digest: bytes) -> None:
    """Measure an image just decoded whole (not drafted), so :func:`analyse` decodes it no more."""
    _facts.put(digest, _measure(_shrunk(image)))


def _measure(sampled: tuple[Image.Image, bool]) -> PixelFacts:
    small, alpha = sampled
    names: Counter[str] = Counter()
    luma_sum = 0.0
    visible = transparent = 0
    for count, pixel in small.getcolors(SAMPLE_SIDE**2) or []:
        assert isinstance(pixel, tuple)  # RGBA: four channels
        red, green, blue, a = pixel
        if a < 255:
            transparent += count
        if a < OPAQUE_ALPHA:
            continue
        visible += count
        names[colour_name(red, green, blue)] += count
        luma_sum += count * (0.299 * red + 0.587 * green + 0.114 * blue)
    total = small.width * small.height
    luma = luma_sum / visible if visible else 0.0
    shares = (
        tuple((name, count / visible) for name, count in names.most_common()) if visible else ()
    )
    return PixelFacts(
        colours=shares,
        brightness=brightness_word(luma),
        mean_luma=round(luma, 1),
        alpha=alpha,
        transparent_share=transparent / total if alpha else 0.0,
    )
