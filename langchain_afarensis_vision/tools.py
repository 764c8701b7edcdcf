"""``describe_image``: a tool that lets any tool-calling agent ask GPT-4V about an image.

The agent names an image; :mod:`._sources.urls` decides whether it may be read or fetched,
:func:`~.images.prepare_image` readies it, and ``llm`` answers. Refusals, unusable images and
API errors come back as text the agent can read, and nothing reaches the API after a refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypedDict, cast

import httpx2
from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import ArgsSchema, BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.v1 import ValidationError as ValidationErrorV1

from langchain_afarensis_vision._api.contract import (
    BASE_IMAGE_TOKENS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_TOKENS,
    Detail,
)
from langchain_afarensis_vision._sources import urls as _safety
from langchain_afarensis_vision._sources.read import MAX_INPUT_BYTES
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import (
    DEFAULT_QUESTION,
    ImageUrl,
    question_message,
)
from langchain_afarensis_vision.errors import (
    AfarensisError,
    InvalidImageError,
    InvalidRequestError,
)
from langchain_afarensis_vision.images import PreparedImage, prepare_image, unknown_facts


def _invalid_arguments(error: ValidationError | ValidationErrorV1) -> str:
    """What was wrong with the agent's arguments: each field and what it accepts (no values)."""
    problems = [
        f"{'.'.join(map(str, problem['loc'])) or 'the arguments'}: {problem['msg']}"
        for problem in error.errors()[:5]
    ]
    return "describe_image refused the arguments: " + "; ".join(problems)


class DescribeImageInput(BaseModel):
    """Arguments of ``describe_image``."""

    image: str = Field(
        description="The image: a file name or path inside the allowed folders (e.g. "
        "'chart.png'), an https:// or http:// URL, or a data: URL."
    )
    question: str = Field(
        default=DEFAULT_QUESTION,
        description="What to ask about the image, e.g. 'What is the total on this receipt?' "
        "(default: a short factual description).",
    )
    detail: Detail | None = Field(
        default=None,
        description="'low' for a quick, cheap look at the whole image; 'high' to read small "
        "text and fine detail; leave out for the default.",
    )


class ImageArtifact(TypedDict):
    """What was sent, as ``ToolMessage.artifact``: the image's facts, never its data.

    ``source`` and :data:`~.images.FACTS`, as every surface reports them. For a URL the API
    fetches, only the URL, ``detail`` and the most the image can cost (``image_tokens``: 85 at
    low detail, else the 1445 upper bound) are known.
    """

    source: str
    format: str | None
    source_width: int | None
    source_height: int | None
    source_bytes: int | None
    mime_type: str | None
    width: int | None
    height: int | None
    bytes: int | None
    changed: bool | None
    detail: Detail
    image_tokens: int


class AfarensisDescribeImageTool(BaseTool):
    """Let an agent hand an image (file, URL or data: URL) and a question to GPT-4 with Vision.

    Example:
        ```python
        tool = AfarensisDescribeImageTool(llm=ChatAfarensis(), allowed_dirs=["./images"])
        tool.invoke({"image": "chart.png", "question": "Which month had the most sales?"})
        ```
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "describe_image"
    description: str = (
        "Look at an image and answer a question about it: photos, screenshots, charts, "
        "scanned documents, diagrams. Give a file name from the allowed folders, an http(s) "
        "URL or a data: URL, and a question."
    )
    args_schema: ArgsSchema | None = DescribeImageInput
    handle_tool_error: bool | str | Callable[[ToolException], Any] | None = True
    """Return refusals and failures to the agent as text (``False`` raises them)."""
    handle_validation_error: (
        bool | str | Callable[[ValidationError | ValidationErrorV1], str] | None
    ) = _invalid_arguments
    """Return arguments that do not fit the schema (``detail='medium'``) to the agent as text,
    naming the field and what it accepts (``False`` raises the ``ValidationError``)."""

    llm: ChatAfarensis
    """The vision model that answers."""
    allowed_dirs: Sequence[Path] = ()
    """Directories local images may come from (none: local files are refused); one may be
    given on its own. A name is
    looked up in each, below one it starts with (``charts/a.png`` for ``./charts``), or from
    the working directory if that lands inside one."""
    max_file_bytes: int = MAX_INPUT_BYTES
    """Largest local file read."""
    download_urls: bool = False
    """Fetch http(s) images here instead of letting the API fetch them. When False, URLs go to
    the API untouched, but ``localhost`` and non-public IP literals are refused (the API
    cannot reach them) unless ``allow_private_urls`` allows them."""
    allow_private_urls: bool | list[str] = False
    """Allow non-public addresses, in either mode: ``True``, or a list of hosts and networks
    (``"127.0.0.1"``, ``"10.0.0.0/8"``, ``"images.internal"``)."""
    max_download_bytes: int = MAX_IMAGE_BYTES
    """Largest image downloaded or taken from a data: URL."""
    download_timeout: float = 10.0
    """Seconds a whole download (redirects included) may take."""
    http_client: httpx2.Client | None = Field(default=None, exclude=True)
    """Client for downloads (default: a fresh one that ignores proxy settings)."""
    getaddrinfo: _safety.GetAddrInfo = Field(default=socket.getaddrinfo, exclude=True)
    """Name resolver for downloads (``socket.getaddrinfo``)."""

    @field_validator("allowed_dirs", mode="before")
    @classmethod
    def _one_directory(cls, value: Any) -> Any:
        """``allowed_dirs="./charts"``: one directory, not the characters of its name."""
        return [value] if isinstance(value, str | os.PathLike) else value

    def _run(
        self,
        image: str,
        question: str = DEFAULT_QUESTION,
        detail: Detail | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> str | tuple[str, ImageArtifact]:
        with _tool_errors():
            message, artifact = self._prepare(image, question, detail)
            callbacks = run_manager.get_child() if run_manager else None
            answer = self.llm.invoke([message], config={"callbacks": callbacks})
        return self._output(answer, artifact)

    async def _arun(
        self,
        image: str,
        question: str = DEFAULT_QUESTION,
        detail: Detail | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> str | tuple[str, ImageArtifact]:
        with _tool_errors():
            message, artifact = await asyncio.to_thread(self._prepare, image, question, detail)
            callbacks = run_manager.get_child() if run_manager else None
            answer = await self.llm.ainvoke([message], config={"callbacks": callbacks})
        return self._output(answer, artifact)

    def _prepare(
        self, image: str, question: str, detail: Detail | None
    ) -> tuple[HumanMessage, ImageArtifact]:
        """Apply the policy, read or fetch the image, and build the message (blocking I/O)."""
        policy = _safety.ImagePolicy(
            allowed_dirs=self.allowed_dirs,
            max_file_bytes=self.max_file_bytes,
            urls=_safety.UrlPolicy(
                download=self.download_urls,
                allow_private=self.allow_private_urls,
                max_bytes=self.max_download_bytes,
                timeout=self.download_timeout,
                client=self.http_client,
                getaddrinfo=self.getaddrinfo,
            ),
        )
        loaded = _safety.load_image(image, policy)
        chosen = detail or self.llm.image_detail
        if loaded.data is None:  # a URL the API fetches itself
            url = ImageUrl(loaded.source, chosen)
            return question_message(question, url), _artifact(loaded.source, chosen, None)
        prepared = prepare_image(loaded.data, chosen, first_frame=self.llm.image_first_frame)
        return question_message(question, prepared), _artifact(loaded.source, chosen, prepared)

    def _output(
        self, answer: AIMessage, artifact: ImageArtifact
    ) -> str | tuple[str, ImageArtifact]:
        text = str(answer.text)
        return (text, artifact) if self.response_format == "content_and_artifact" else text


def _artifact(source: str, detail: Detail, prepared: PreparedImage | None) -> ImageArtifact:
    if prepared is None:  # a URL the API fetches: only the most it can cost is known
        most = BASE_IMAGE_TOKENS if detail == "low" else MAX_IMAGE_TOKENS
        return cast(ImageArtifact, {"source": source, **unknown_facts(detail, most)})
    return cast(ImageArtifact, {"source": source, **prepared.facts()})


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """Turn refusals, unusable images and API errors into messages for the agent."""
    try:
        yield
    except _safety.ImageRefused as exc:
        raise ToolException(f"describe_image refused the image: {exc}") from exc
    except InvalidImageError as exc:
        raise ToolException(f"describe_image cannot use this image ({exc.code}): {exc}") from exc
    except InvalidRequestError as exc:  # refused before sending, like a bad image
        raise ToolException(f"describe_image cannot send this request: {exc}") from exc
    except AfarensisError as exc:  # the transport has masked any key a server echoed
        raise ToolException(f"describe_image failed: the vision API call failed: {exc}") from exc
