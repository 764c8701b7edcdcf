"""``afarensis-vision serve``: run the local server in the foreground until Ctrl+C."""

from __future__ import annotations

import threading

from langchain_afarensis_vision._contract import API_KEY_ENV, BASE_URL_ENV
from langchain_afarensis_vision.server._runner import LocalAfarensisServer


def serve_main(
    host: str = "127.0.0.1",
    port: int = 8000,
    api_key: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Serve until interrupted (or until ``stop`` is set); print how to point clients at it.

    Args:
        host: Interface to listen on.
        port: Port to listen on (0 picks a free one).
        api_key: The key to accept; a random one is generated and printed when None.
        rpm: Requests per minute allowed (None: no limit).
        tpm: Tokens per minute allowed (None: no limit).
        stop: Set it to stop the server (for tests); Ctrl+C works too.

    Returns:
        The process exit code: 0.
    """
    server = LocalAfarensisServer(
        host=host, port=port, api_key=api_key, requests_per_minute=rpm, tokens_per_minute=tpm
    )
    server.start()
    limits = ", ".join(
        f"{value} {name} per minute"
        for name, value in (("requests", rpm), ("tokens", tpm))
        if value
    )
    print(f"Local Afarensis server on {server.base_url} (offline engine; {limits or 'no limits'})")
    print(f"API key: {server.api_key}")
    print("Point a client at it with:")
    print(f"export {BASE_URL_ENV}={server.base_url}")
    print(f"export {API_KEY_ENV}={server.api_key}")
    print("Press Ctrl+C to stop.", flush=True)
    event = stop or threading.Event()
    try:
        while not event.wait(0.5) and server.running:
            pass
    except KeyboardInterrupt:
        print("\nStopping.")
    finally:
        server.stop()
    return 0
