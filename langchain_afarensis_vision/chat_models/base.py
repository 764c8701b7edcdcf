"""``ChatAfarensis``: the LangChain chat model for Afarensis GPT-4 with Vision."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from functools import cached_property
from typing import Any, Literal, Self

import httpx2
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils import from_env, secret_from_env
from pydantic import ConfigDict, Field, SecretStr

from langchain_afarensis_vision._api import contract as _contract
from langchain_afarensis_vision._api.contract import Detail
from langchain_afarensis_vision._sources.urls import UrlPolicy
from langchain_afarensis_vision.chat_models import _structured as _structured
from langchain_afarensis_vision.chat_models import _tokens as _tokens
from langchain_afarensis_vision.chat_models._messages import ImageOptions, to_wire_messages
from langchain_afarensis_vision.chat_models._responses import (
    PROVIDER,
    parse_chunk,
    parse_completion,
)
from langchain_afarensis_vision.chat_models._tokens import Request, image_tokens
from langchain_afarensis_vision.chat_models._transport import RetryPolicy, Transport
from langchain_afarensis_vision.errors import MissingAPIKeyError, check_text
from langchain_afarensis_vision.rate_limiters import MAX_RETRY_AFTER, AfarensisRateLimiter

_COMPLETIONS = "/chat/completions"


class ChatAfarensis(BaseChatModel):
    """Afarensis GPT-4 with Vision as a LangChain chat model.

    Example:
        ```python
        from langchain_core.messages import HumanMessage
        from langchain_afarensis_vision import ChatAfarensis

        model = ChatAfarensis()  # reads AFARENSIS_API_KEY and AFARENSIS_BASE_URL
        model.invoke([HumanMessage(content=[
            {"type": "text", "text": "What's in this image?"},
            {"type": "image", "url": "https://example.com/photo.jpg"},
        ])])
        ```
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    model: str = _contract.DEFAULT_MODEL
    """Model name sent in every request (a per-call ``model=`` overrides it)."""
    api_key: SecretStr | None = Field(
        default_factory=secret_from_env(_contract.API_KEY_ENV, default=None)
    )
    """API key; read from ``AFARENSIS_API_KEY``. Checked when a request is made."""
    base_url: str = Field(
        default_factory=from_env(_contract.BASE_URL_ENV, default=_contract.DEFAULT_BASE_URL)
    )
    """API base URL ending in ``/v1``; read from ``AFARENSIS_BASE_URL``."""
    max_tokens: int | None = 1024
    """Most tokens to generate. Always sent: the preview model's own default is very short."""
    temperature: float | None = None
    """Sampling temperature (the API's default when None)."""
    stop: list[str] | None = None
    """Stop sequences."""
    timeout: float | None = 60.0
    """Seconds to wait for a response (per attempt)."""
    max_retries: int = 2
    """Retries on 429, 5xx, connection errors and timeouts, with backoff and jitter."""
    max_retry_after: float = MAX_RETRY_AFTER
    """Longest ``Retry-After`` of a 429 waited for before a retry; a longer one raises the
    :class:`~.errors.RateLimitError` at once (its ``retry_after`` says how long)."""
    image_detail: Detail = "auto"
    """Detail level for images that name none: ``auto``, ``low`` or ``high``."""
    image_first_frame: bool = False
    """Send the first frame of animated GIF/WEBP/PNG images instead of refusing them."""
    streaming: bool = False
    """Stream answers by default (``invoke`` goes through ``stream``)."""
    stream_usage: bool = True
    """Ask for token usage at the end of streamed answers."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Other request-body parameters (e.g. ``top_p``, ``seed``)."""
    default_headers: dict[str, str] | None = None
    """Headers added to every request."""
    http_client: httpx2.Client | None = Field(default=None, exclude=True)
    """An ``httpx2.Client`` to use instead of the package's own."""
    http_async_client: httpx2.AsyncClient | None = Field(default=None, exclude=True)
    """An ``httpx2.AsyncClient`` to use instead of the package's own (one per event loop)."""

    @property
    def _llm_type(self) -> str:
        return "afarensis-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": self.stop,
            "image_detail": self.image_detail,
            "image_first_frame": self.image_first_frame,
            **self.model_kwargs,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider=PROVIDER,
            ls_model_name=kwargs.get("model", self.model),
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        if ls_stop := stop or kwargs.get("stop") or self.stop:
            params["ls_stop"] = ls_stop
        return params

    def _resolve_model_profile(self) -> ModelProfile | None:
        return ModelProfile(
            max_input_tokens=_contract.CONTEXT_WINDOW,
            max_output_tokens=_contract.MAX_OUTPUT_TOKENS,
            text_inputs=True,
            image_inputs=True,
            image_url_inputs=True,
            image_tool_message=True,
            pdf_inputs=False,
            audio_inputs=False,
            video_inputs=False,
            text_outputs=True,
            tool_calling=True,
            tool_choice=True,
            tool_call_streaming=True,
            structured_output=True,
        )

    # -- request building ---------------------------------------------------------------------

    @cached_property
    def _transport(self) -> Transport:
        return Transport(
            base_url=self.base_url,
            api_key=self._require_api_key,
            timeout=self.timeout,
            policy=RetryPolicy(self.max_retries, max_retry_after=self.max_retry_after),
            headers=self.default_headers,
            client=self.http_client,
            async_client=self.http_async_client,
            observe=None if self._limiter is None else self._limiter.observe,
        )

    @property
    def _limiter(self) -> AfarensisRateLimiter | None:
        """The token-aware limiter, if ``rate_limiter`` is one (it then learns from answers)."""
        return self.rate_limiter if isinstance(self.rate_limiter, AfarensisRateLimiter) else None

    @contextmanager
    def _charged(self, request: Request) -> Iterator[None]:
        """Hold the call's tokens in the rate limiter (waiting for them), settled when it ends."""
        if (limiter := self._limiter) is None:
            yield
            return
        limiter.reserve_tokens(request.cost())
        try:
            yield
        finally:
            limiter.settle()

    @asynccontextmanager
    async def _acharged(self, request: Request) -> AsyncIterator[None]:
        """Async :meth:`_charged`."""
        if (limiter := self._limiter) is None:
            yield
            return
        await limiter.areserve_tokens(request.cost())
        try:
            yield
        finally:
            limiter.settle()

    # The transport (HTTP clients, locks) belongs to one instance: a copy or an unpickled
    # model makes its own, from its own fields, on first use. Injected clients are shared.

    def __copy__(self) -> Self:
        copied = super().__copy__()
        copied.__dict__.pop("_transport", None)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        for shared in (self.__dict__.get("_transport"), self.http_client, self.http_async_client):
            if shared is not None:
                memo[id(shared)] = shared
        copied = super().__deepcopy__(memo)
        copied.__dict__.pop("_transport", None)
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k != "_transport"}
        return state

    def close(self) -> None:
        """Close the HTTP client the model made itself (injected clients are yours to close).

        Optional: it is also closed when the model is garbage-collected, and each async client
        when its event loop shuts down. ``with ChatAfarensis() as model:`` closes it too.
        """
        self._transport.close()

    async def aclose(self) -> None:
        """Close the running event loop's async client, if the model made it."""
        await self._transport.aclose()

    def __enter__(self) -> ChatAfarensis:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ChatAfarensis:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _require_api_key(self) -> str:
        if self.api_key is None or not self.api_key.get_secret_value():
            msg = (
                f"No Afarensis API key: set the {_contract.API_KEY_ENV} environment variable "
                "or pass api_key= to ChatAfarensis."
            )
            raise MissingAPIKeyError(msg)
        return self.api_key.get_secret_value()

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, stream: bool, **kwargs: Any
    ) -> Request:
        """The body to send, with its cost: the messages are mapped to the wire once."""
        images: list[int] = []  # each image's tokens, seen as it is mapped (for the limiter)
        seen = None if self._limiter is None else lambda p: images.append(image_tokens(p, None))
        options = ImageOptions(self.image_detail, self.image_first_frame, seen=seen)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": to_wire_messages(messages, options),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": stop or self.stop,
            **self.model_kwargs,
            **kwargs,
        }
        if stream:
            payload["stream"] = True
            if self.stream_usage:
                payload["stream_options"] = {"include_usage": True}
        body = {key: value for key, value in payload.items() if value is not None}
        check_text(body)  # a lone surrogate: refused here, not a UnicodeEncodeError when sent
        return Request(body, images)

    # -- the four entry points: build payload -> send -> parse ------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, stream=False, **kwargs)
        with self._charged(request):
            return parse_completion(self._transport.post(_COMPLETIONS, request.payload))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, stream=False, **kwargs)
        async with self._acharged(request):
            return parse_completion(await self._transport.apost(_COMPLETIONS, request.payload))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, stream=True, **kwargs)
        with self._charged(request):
            for event in self._transport.stream(_COMPLETIONS, request.payload):
                if chunk := parse_chunk(event):
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, stream=True, **kwargs)
        async with self._acharged(request):
            async for event in self._transport.astream(_COMPLETIONS, request.payload):
                if chunk := parse_chunk(event):
                    if run_manager:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk

    # -- tools, structured output, token counting ---------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        strict: bool | None = None,
        parallel_tool_calls: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (any form ``convert_to_openai_tool`` takes) to the model.

        ``tool_choice`` may be ``"auto"``, ``"none"``, ``"required"``/``"any"``/``True``, a tool
        name, or a Chat Completions ``tool_choice`` dict.
        """
        kwargs.update(_structured.tools_kwargs(tools, tool_choice, strict, parallel_tool_calls))
        return super().bind(**kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_mode", "json_schema"] = "function_calling",
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Answer in the shape of ``schema`` (a Pydantic class, TypedDict or JSON schema).

        ``function_calling`` forces a tool call; ``json_schema`` sends ``response_format``
        with the schema; ``json_mode`` asks for any JSON object.
        """
        if kwargs:
            msg = f"Received unsupported arguments {kwargs}"
            raise ValueError(msg)
        llm = self.bind(**_structured.structured_kwargs(schema, method, strict))
        parser = _structured.output_parser(schema, method)
        return _structured.parse_output(llm, parser, include_raw)

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool] | None = None,
        *,
        fetch_image_sizes: bool = False,
        url_policy: UrlPolicy | None = None,
    ) -> int:
        """Count prompt tokens as the API bills them: text exactly (cl100k_base), images by formula.

        Text is counted offline (the vocabulary ships with the package) and framed as the API
        frames it: 3 tokens a message and its role, names, tool calls and ids, tool definitions
        and 3 to prime the reply (``_api.contract.prompt_text_tokens``, also the server's bill).

        Inline images are counted from their pixel size (their base64 is never counted). URL
        images count as the 1445-token upper bound unless ``fetch_image_sizes=True``, which reads
        just enough of each image to learn its size, under the ``describe_image`` tool's download
        rules: ``url_policy``, by default ``UrlPolicy()`` (public addresses only, each redirect
        checked, one deadline per image, a client of its own: never ``http_client``, never the
        key). An image refused or not fetched counts as the upper bound, with a warning. To
        measure images on a private network, pass e.g.
        ``url_policy=UrlPolicy(allow_private=["10.0.0.0/8"])``
        (``from langchain_afarensis_vision import UrlPolicy``).
        """
        urls = (url_policy or UrlPolicy()) if fetch_image_sizes else None
        return _tokens.count_messages(messages, tools, self.image_detail, urls)

    def get_num_tokens(self, text: str) -> int:
        """Tokens in ``text``: cl100k_base, counted exactly and offline (no download)."""
        check_text(text)
        return _contract.text_tokens(text)
