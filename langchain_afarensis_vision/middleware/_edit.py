"""An image budget for long agent loops: :class:`ImageBudgetEdit` and :func:`apply_image_budget`.

An agent that takes screenshots, or passes images through tools, re-sends every earlier image
on every turn: the cost grows with the square of the turns, and the context fills with pixels
the model no longer needs. The budget caps what each model call receives: the newest images at
their own detail, older ones at ``low`` detail (85 tokens each), the oldest replaced by a line
of text saying an image was here (and, when the conversation holds a ``describe_image`` result
about it, pointing to it). Images are counted exactly, by the API's formula; the images of the
latest user turn (the last user message, and any user messages right before it) are never
touched; messages are never added, removed or reordered, so a
tool call and its tool message stay paired. The stored conversation is never rewritten: only
what each model call receives changes.

With LangChain 1.x agents, :class:`ImageBudgetEdit` is a strategy for langchain's own
``ContextEditingMiddleware``::

    from langchain.agents import create_agent
    from langchain.agents.middleware import ContextEditingMiddleware

    agent = create_agent(
        model,
        tools=[take_screenshot],
        middleware=[ContextEditingMiddleware(edits=[ImageBudgetEdit(max_image_tokens=6_000)])],
    )

With LangGraph or a hand-written loop, call :func:`apply_image_budget` on the messages before
each model call: ``model.invoke(apply_image_budget(history, max_image_tokens=6_000))``.

This module needs only ``langchain-core``; ``ContextEditingMiddleware`` comes with
``langchain>=1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from langchain_core.messages import AnyMessage, BaseMessage

from langchain_afarensis_vision._api.contract import Detail
from langchain_afarensis_vision.errors import checked_detail
from langchain_afarensis_vision.middleware import _policy as _image_budget
from langchain_afarensis_vision.middleware._policy import DEFAULT_PLACEHOLDER, DEFAULT_POINTER

__all__ = ["DEFAULT_PLACEHOLDER", "DEFAULT_POINTER", "ImageBudgetEdit", "apply_image_budget"]

M = TypeVar("M", bound=BaseMessage)


@dataclass(slots=True)
class ImageBudgetEdit:
    """An image budget, as a ``ContextEdit`` strategy for langchain's ``ContextEditingMiddleware``.

    Each model call receives earlier images worth at most ``max_image_tokens`` in all (the
    images of the latest user turn are not counted, and never touched: the last user message,
    and any user messages right before it). Walking from the
    newest image to the oldest: images are kept at their own detail while they fit the detail
    budget, then sent at ``low`` detail (85 tokens) while they fit the whole budget, then
    replaced by a text stub; an older image never gets more detail than a newer one.

    ``ContextEditingMiddleware`` hands :meth:`apply` a deep copy of the request's messages,
    never the agent's state. Its ``count_tokens`` (langchain's approximate counter charges any
    image 85 tokens) is not used: images are counted by the API's formula.
    """

    max_image_tokens: int = 8_000
    """The most the earlier images of a model call may cost in all, in tokens."""
    detail_tokens: int | None = None
    """The most the images kept at their own detail may cost (default: half of
    ``max_image_tokens``, or all of it when ``keep_detail`` is given)."""
    keep_detail: int | None = None
    """The most images kept at their own detail (default: as many as ``detail_tokens`` allows);
    ``keep_detail=3`` keeps the last three as they are, and sends older ones at low detail."""
    max_images: int | None = None
    """The most earlier images sent, whatever their detail (default: no count)."""
    default_detail: Detail = "auto"
    """The detail of images that name none: the model's ``image_detail``."""
    image_sizes: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Sizes of ``http(s)`` images, by URL, if known; others cost the 1445-token upper bound
    (nothing is downloaded)."""
    description_tools: Sequence[str] = ("describe_image",)
    """Tools whose results describe the image named by their ``image`` argument: a stub points
    to such a result when there is one about its image."""
    placeholder: str = DEFAULT_PLACEHOLDER
    """The text that replaces an image; ``{image}`` says what it was (type and size, or URL)."""
    pointer: str = DEFAULT_POINTER
    """Added to the placeholder when a description exists; ``{tool}``, ``{tool_call_id}``."""
    first_frame: bool = False
    """Re-prepare animated images from their first frame (the model's ``image_first_frame``)."""

    def __post_init__(self) -> None:
        self.default_detail = checked_detail(self.default_detail)
        for name in ("max_image_tokens", "detail_tokens", "keep_detail", "max_images"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                msg = f"{name} must be a whole number >= 0; got {value!r}"
                raise ValueError(msg)

    def policy(self) -> _image_budget.Policy:
        """The settings, checked, as the policy reads them."""
        detail_tokens = self.detail_tokens
        if detail_tokens is None:
            whole = self.keep_detail is not None
            detail_tokens = self.max_image_tokens if whole else self.max_image_tokens // 2
        return _image_budget.Policy(
            max_image_tokens=self.max_image_tokens,
            detail_tokens=min(detail_tokens, self.max_image_tokens),
            keep_detail=self.keep_detail,
            max_images=self.max_images,
            default_detail=self.default_detail,
            image_sizes=dict(self.image_sizes),
            description_tools=frozenset(self.description_tools),
            placeholder=self.placeholder,
            pointer=self.pointer,
            first_frame=self.first_frame,
        )

    def apply(
        self,
        messages: list[AnyMessage],
        *,
        count_tokens: Callable[[Sequence[BaseMessage]], int] | None = None,
    ) -> None:
        """Apply the budget to ``messages`` in place (the ``ContextEdit`` protocol).

        Messages that change are replaced in the list by edited copies; no message object is
        modified. ``count_tokens`` is accepted and not used.
        """
        messages[:] = _image_budget.apply(messages, self.policy())

    def __call__(self, messages: Sequence[M]) -> list[M]:
        """``messages`` under the budget, as a new list (the input is not modified)."""
        return _image_budget.apply(messages, self.policy())


def apply_image_budget(
    messages: Sequence[M],
    *,
    max_image_tokens: int = 8_000,
    detail_tokens: int | None = None,
    keep_detail: int | None = None,
    max_images: int | None = None,
    default_detail: Detail = "auto",
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    description_tools: Sequence[str] = ("describe_image",),
    placeholder: str = DEFAULT_PLACEHOLDER,
    pointer: str = DEFAULT_POINTER,
    first_frame: bool = False,
) -> list[M]:
    """``messages`` as a model call should receive them under an image budget: a new list.

    The same policy as :class:`ImageBudgetEdit` (see it for each setting), for LangGraph nodes
    and hand-written loops: keep the full history, and send
    ``apply_image_budget(history, ...)``. The input list and its messages are not modified;
    messages whose images all stay as they are are the same objects in the result.

    Example:
        ```python
        answer = model.invoke(apply_image_budget(history, max_image_tokens=6_000))
        history.append(answer)
        ```
    """
    edit = ImageBudgetEdit(
        max_image_tokens=max_image_tokens,
        detail_tokens=detail_tokens,
        keep_detail=keep_detail,
        max_images=max_images,
        default_detail=default_detail,
        image_sizes=dict(image_sizes or {}),
        description_tools=description_tools,
        placeholder=placeholder,
        pointer=pointer,
        first_frame=first_frame,
    )
    return edit(messages)
