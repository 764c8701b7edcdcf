"""The Afarensis Vision API's rules, as data and pure functions.

Everything here restates ``shared/spec/afarensis-vision-api.md``: accepted formats, the 20 MB
limit, detail levels, the image-token formula and the error codes. The client (``images``,
``chat_models``) and the local server read the same definitions, so they cannot drift apart.
This module imports nothing from the package.
"""

from __future__ import annotations

import math
from typing import Final, Literal, get_args

Detail = Literal["low", "high", "auto"]
"""An ``image_url.detail`` level. ``auto`` is billed and processed as ``high``."""

DETAILS: Final[tuple[str, ...]] = get_args(Detail)

DEFAULT_MODEL: Final = "gpt-4-vision-preview"
DEFAULT_BASE_URL: Final = "https://api.afarensis.com/v1"
API_KEY_ENV: Final = "AFARENSIS_API_KEY"
BASE_URL_ENV: Final = "AFARENSIS_BASE_URL"

ACCEPTED_MIME_TYPES: Final[frozenset[str]] = frozenset(
    {"image/png", "image/jpeg", "image/webp", "image/gif"}
)
"""The formats the API accepts (GIF only when not animated)."""

MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
"""At most 20 MB per image (decoded bytes, not base64 characters)."""

URL_SCHEMES: Final[frozenset[str]] = frozenset({"http", "https", "data"})

# Token formula constants.
LOW_DETAIL_SIDE: Final = 512
HIGH_DETAIL_MAX_SIDE: Final = 2048
HIGH_DETAIL_SHORT_SIDE: Final = 768
TILE_SIDE: Final = 512
TOKENS_PER_TILE: Final = 170
BASE_IMAGE_TOKENS: Final = 85
MAX_IMAGE_TOKENS: Final = BASE_IMAGE_TOKENS + TOKENS_PER_TILE * 8
"""The most any single image can cost (e.g. 2048 x 768 at high detail): 1445 tokens."""

# Model limits (the model profile): GPT-4V preview has a 128k context and 4k output tokens.
CONTEXT_WINDOW: Final = 128_000
MAX_OUTPUT_TOKENS: Final = 4_096

# Error codes the API returns in ``error.code``.
ErrorCode = Literal[
    "invalid_image_format",
    "image_too_large",
    "animated_gif_not_supported",
    "invalid_image",
    "image_url_unreachable",
    "invalid_value",
    "invalid_api_key",
    "model_not_found",
    "rate_limit_exceeded",
]
IMAGE_ERROR_CODES: Final[frozenset[str]] = frozenset(
    {
        "invalid_image_format",
        "image_too_large",
        "animated_gif_not_supported",
        "invalid_image",
        "image_url_unreachable",
    }
)
RETRYABLE_STATUSES: Final[frozenset[int]] = frozenset({429, 500, 502, 503, 504})


def check_detail(detail: str) -> Detail:
    """Return ``detail`` as a :data:`Detail`, or raise ``ValueError`` naming the accepted ones."""
    if detail not in DETAILS:
        msg = f"detail must be one of {', '.join(DETAILS)}; got {detail!r}"
        raise ValueError(msg)
    return detail  # type: ignore[return-value]


def _scale(width: int, height: int, num: int, den: int) -> tuple[int, int]:
    """Scale both sides by ``num / den`` in exact integer arithmetic, rounding down, never to 0."""
    return max(1, width * num // den), max(1, height * num // den)


def effective_size(width: int, height: int, detail: Detail = "auto") -> tuple[int, int]:
    """The size the model actually sees for an image of ``width`` x ``height``.

    ``low`` fits the image in 512 x 512; ``high`` and ``auto`` fit it in 2048 x 2048 and then
    bring the shorter side down to 768 when both sides exceed 768. Nothing is scaled up.

    Raises:
        ValueError: if a side is not a positive integer or ``detail`` is unknown.
    """
    check_detail(detail)
    if width < 1 or height < 1:
        msg = f"image sides must be positive; got {width} x {height}"
        raise ValueError(msg)
    if detail == "low":
        longest = max(width, height)
        if longest <= LOW_DETAIL_SIDE:
            return width, height
        return _scale(width, height, LOW_DETAIL_SIDE, longest)
    if max(width, height) > HIGH_DETAIL_MAX_SIDE:
        width, height = _scale(width, height, HIGH_DETAIL_MAX_SIDE, max(width, height))
    if min(width, height) > HIGH_DETAIL_SHORT_SIDE:
        width, height = _scale(width, height, HIGH_DETAIL_SHORT_SIDE, min(width, height))
    return width, height


def estimate_image_tokens(width: int, height: int, detail: Detail = "auto") -> int:
    """Image tokens for an image of ``width`` x ``height`` pixels, by the API's formula.

    ``low`` costs 85 whatever the size; ``high`` and ``auto`` cost 170 per 512-px tile of the
    effective size, plus 85.

    Example:
        >>> estimate_image_tokens(1024, 1024, "high")
        765
    """
    w, h = effective_size(width, height, detail)
    if detail == "low":
        return BASE_IMAGE_TOKENS
    tiles = math.ceil(w / TILE_SIDE) * math.ceil(h / TILE_SIDE)
    return TOKENS_PER_TILE * tiles + BASE_IMAGE_TOKENS
