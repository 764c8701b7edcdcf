"""What the model sees: a prepared image drawn with its 512-px tile grid.

In Jupyter a prepared image shows as the picture that goes out, scaled down for the screen,
with the tiles the API bills drawn over it, and a caption: its size and bytes before and after,
the detail level and the token arithmetic (``_repr_html_``; ``_repr_png_`` is the picture
alone). ``afarensis-vision tokens --show`` writes the same picture, caption included, to a PNG
file (:func:`picture_png`). Only what is displayed is decoded, at most a thumbnail's worth
(a JPEG decodes at 1/2 to 1/8 scale): the prepared image itself is never changed.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Final, Protocol, cast

from PIL import Image, ImageDraw, ImageFont

from langchain_afarensis_vision._api.contract import (
    BASE_IMAGE_TOKENS,
    TILE_SIDE,
    TOKENS_PER_TILE,
    Detail,
    effective_size,
    image_tiles,
)
from langchain_afarensis_vision._sources.opening import DECODE_BUDGET, working_bytes


class Shown(Protocol):
    """What the view draws of a prepared image: its fields, not its class (no import circle)."""

    @property
    def data(self) -> bytes: ...
    @property
    def mime_type(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def size(self) -> tuple[int, int]: ...
    @property
    def detail(self) -> Detail: ...
    @property
    def tokens(self) -> int: ...
    @property
    def format(self) -> str: ...
    @property
    def source_size(self) -> tuple[int, int]: ...
    @property
    def source_bytes(self) -> int: ...
    @property
    def changed(self) -> bool: ...


HTML_SIDE: Final = 384
"""The longest side of the thumbnail in ``_repr_html_`` (a JPEG: notebooks stay small)."""
PNG_SIDE: Final = 512
"""The longest side of ``_repr_png_``'s picture."""
FILE_SIDE: Final = 768
"""The longest side of the picture ``tokens --show`` writes."""
GRID: Final = (255, 0, 200)
"""The tile lines: magenta, each with a dark line beside it so that it shows on any picture."""
_SHADOW: Final = (20, 20, 20)
_FONT_SIZE: Final = 13


class ShownInJupyter:
    """Jupyter's rich display of a prepared image (a mixin, no state: it draws ``self``)."""

    __slots__ = ()

    def _repr_html_(self) -> str:
        return picture_html(cast("Shown", self))

    def _repr_png_(self) -> bytes | None:
        shown = tile_picture(cast("Shown", self), PNG_SIDE)
        return None if shown is None else _encoded(shown.quantize(256), "PNG")  # a third the size


def caption(image: Shown) -> list[str]:
    """Two lines: the size and bytes before and after; the detail level and the token sum."""
    w, h = image.source_size
    sent = f"{image.width}x{image.height} {image.mime_type.removeprefix('image/').upper()}"
    if not image.changed:
        before = f"{sent}, {len(image.data):,} bytes, unchanged"
    elif image.source_bytes:
        before = f"{w}x{h} {image.format}, {image.source_bytes:,} bytes -> {sent}"
        before += f", {len(image.data):,} bytes"
    else:
        before = f"{w}x{h} {image.format} image -> {sent}, {len(image.data):,} bytes"
    seen = effective_size(image.width, image.height, image.detail)
    if seen != image.size:
        before += f" (the API shrinks it to {seen[0]}x{seen[1]})"
    columns, rows = image_tiles(*image.source_size, image.detail)
    if not columns:
        return [before, f"detail {image.detail}: {image.tokens} tokens flat (no tiles)"]
    tiles = columns * rows
    return [
        before,
        f"detail {image.detail}: {columns}x{rows} tiles of {TILE_SIDE} px: "
        f"{tiles} x {TOKENS_PER_TILE} + {BASE_IMAGE_TOKENS} = {image.tokens} tokens",
    ]


def tile_picture(image: Shown, side: int = FILE_SIDE) -> Image.Image | None:
    """The image as the model sees it, at most ``side`` px long, with its tile grid drawn.

    None if it cannot be drawn here: too large to decode within the budget (an image sent
    unprepared), or not decodable.
    """
    seen = effective_size(image.width, image.height, image.detail)
    scale = min(1.0, side / max(seen))
    shown = (max(1, round(seen[0] * scale)), max(1, round(seen[1] * scale)))
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            if working_bytes(opened, shown) > DECODE_BUDGET:  # read before the draft below
                return None
            if opened.format in {"JPEG", "MPO"}:
                opened.draft("RGB", shown)  # decode at 1/2 .. 1/8 scale, never below `shown`
            picture = _flat(opened).resize(shown, Image.Resampling.LANCZOS, reducing_gap=2.0)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    columns, rows = image_tiles(image.width, image.height, image.detail)
    _draw_grid(picture, columns, rows, TILE_SIDE * scale)
    return picture


def picture_png(image: Shown, side: int = FILE_SIDE) -> bytes | None:
    """:func:`tile_picture` with its caption below it, as PNG bytes (``tokens --show``)."""
    shown = tile_picture(image, side)
    if shown is None:
        return None
    font = ImageFont.load_default(size=_FONT_SIZE)
    lines = caption(image)
    line_height = _FONT_SIZE + 5
    width = max(shown.width, *(round(font.getlength(line)) + 12 for line in lines))
    sheet = Image.new("RGB", (width, shown.height + line_height * len(lines) + 10), "white")
    sheet.paste(shown, (0, 0))
    draw = ImageDraw.Draw(sheet)
    for index, line in enumerate(lines):
        draw.text((6, shown.height + 5 + index * line_height), line, fill="black", font=font)
    return _encoded(sheet, "PNG")


def picture_html(image: Shown) -> str:
    """A ``<figure>``: the thumbnail (an inline JPEG) above its caption."""
    lines = [html.escape(line) for line in caption(image)]
    text = f'<figcaption style="font:12px monospace">{"<br>".join(lines)}</figcaption>'
    shown = tile_picture(image, HTML_SIDE)
    if shown is None:
        picture = "<div>(too large to draw here: the API shrinks it itself)</div>"
    else:
        data = base64.b64encode(_encoded(shown, "JPEG")).decode("ascii")
        picture = (
            f'<img src="data:image/jpeg;base64,{data}" width="{shown.width}" '
            f'height="{shown.height}" alt="{lines[0]}">'
        )
    style = "display:inline-block;margin:0 12px 12px 0;vertical-align:top"
    return f'<figure style="{style}">{picture}{text}</figure>'


def _flat(image: Image.Image) -> Image.Image:
    """RGB, with any transparency over white."""
    if image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, "white")
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _draw_grid(picture: Image.Image, columns: int, rows: int, tile: float) -> None:
    """Lines between the tiles and around the picture (just the frame at ``low``: no tiles)."""
    draw = ImageDraw.Draw(picture)
    right, bottom = picture.width - 1, picture.height - 1
    xs = [round(tile * k) for k in range(1, columns) if round(tile * k) < right]
    ys = [round(tile * k) for k in range(1, rows) if round(tile * k) < bottom]
    for x in xs:
        draw.line([(x + 1, 0), (x + 1, bottom)], fill=_SHADOW)
        draw.line([(x - 1, 0), (x - 1, bottom)], fill=_SHADOW)
        draw.line([(x, 0), (x, bottom)], fill=GRID)
    for y in ys:
        draw.line([(0, y + 1), (right, y + 1)], fill=_SHADOW)
        draw.line([(0, y - 1), (right, y - 1)], fill=_SHADOW)
        draw.line([(0, y), (right, y)], fill=GRID)
    draw.rectangle([(0, 0), (right, bottom)], outline=GRID, width=2)


def _encoded(picture: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    options = {"quality": 80} if fmt == "JPEG" else {"optimize": True}
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()
