"""Images prepared once for the API: read, checked, upright, converted, resized and encoded.

``_preparation`` holds :func:`prepare_image` and :class:`PreparedImage`; ``_view`` draws what the
model sees (Jupyter, ``tokens --show``); ``_end`` finds where an encoded image really ends.
"""

from langchain_afarensis_vision.images._preparation import (
    BUDGET,
    PreparedImage,
    UnpreparedImageWarning,
    clear_cache,
    prepare_image,
)

__all__ = ["BUDGET", "PreparedImage", "UnpreparedImageWarning", "clear_cache", "prepare_image"]
