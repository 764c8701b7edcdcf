"""A local Afarensis-compatible API server: the wire contract, answered by an offline engine.

In the spirit of LocalStack or moto: it speaks the exact API contract
(``tests/data/spec/afarensis-vision-api.md`` in the repository: auth, models, body validation
against the OpenAPI schema, the per-image rules and codes, rate limits, streaming), so a program
that works against it works against the real API; and it answers questions about images with a
deterministic, honest offline engine (:mod:`.engine`) that measures what it can and says what it
cannot.

Example:
    ```python
    from langchain_afarensis_vision import ChatAfarensis
    from langchain_afarensis_vision.server import LocalAfarensisServer

    with LocalAfarensisServer() as server:
        model = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
        print(model.invoke("Hello").content)
    ```

Needs the ``server`` extra: ``pip install ".[server]"`` in a clone of the repository.
"""

from __future__ import annotations

INSTALL_HINT = 'pip install ".[server]" in a clone of langchain-afarensis-vision'

try:
    import jsonschema  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    msg = f"The local Afarensis server needs the 'server' extra: {INSTALL_HINT} ({exc})"
    raise ImportError(msg) from exc

from langchain_afarensis_vision.server._cli import serve_main  # noqa: E402
from langchain_afarensis_vision.server._runner import LocalAfarensisServer  # noqa: E402
from langchain_afarensis_vision.server.app import create_app  # noqa: E402
from langchain_afarensis_vision.server.faults import Faults  # noqa: E402
from langchain_afarensis_vision.server.settings import (  # noqa: E402
    DEFAULT_MODELS,
    ServerSettings,
)

__all__ = [
    "DEFAULT_MODELS",
    "Faults",
    "LocalAfarensisServer",
    "ServerSettings",
    "create_app",
    "serve_main",
]
