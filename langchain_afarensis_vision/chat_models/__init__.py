"""``ChatAfarensis``, the chat model: ``base`` (fields and the build, send, parse entry points).

Its rooms: ``_messages`` (LangChain messages to the wire, once per call), ``_responses``
(answers and stream chunks to messages), ``_structured`` (tools and structured output),
``_tokens`` (offline counting) and ``_transport`` (httpx2, retries, SSE, errors mapped).
"""

from langchain_afarensis_vision.chat_models.base import ChatAfarensis

__all__ = ["ChatAfarensis"]
