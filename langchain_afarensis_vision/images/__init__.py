"""Images prepared once for the API: read, checked, upright, converted, resized and encoded.

``_preparation`` holds :func:`prepare_image` and :class:`PreparedImage` (its names are listed
here, once); ``_pixels`` renders and encodes; ``_view`` draws what the model sees (Jupyter,
``tokens --show``); ``_end`` finds where an encoded image really ends.
"""

from langchain_afarensis_vision.images._preparation import (
    BUDGET,
    FACTS,
    PreparedImage,
    UnpreparedImageWarning,
    clear_cache,
    prepare_image,
    refused_facts,
    unknown_facts,
)

__all__ = [
    "BUDGET",
    "FACTS",
    "PreparedImage",
    "UnpreparedImageWarning",
    "clear_cache",
    "prepare_image",
    "refused_facts",
    "unknown_facts",
]
