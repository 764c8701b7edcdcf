"""Agent middleware: ``ImageBudgetEdit`` (``_edit``) and the image-budget policy (``_policy``)."""

from langchain_afarensis_vision.middleware._edit import (
    DEFAULT_PLACEHOLDER,
    DEFAULT_POINTER,
    ImageBudgetEdit,
    apply_image_budget,
)

__all__ = ["DEFAULT_PLACEHOLDER", "DEFAULT_POINTER", "ImageBudgetEdit", "apply_image_budget"]
