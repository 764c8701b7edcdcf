"""The API key never shows: not in reprs, dumps, logs, errors, traces, copies, CLI output, files.

A distinctive key (:data:`KEY`) is used everywhere, and each surface is searched for it (and for
:data:`SECRET_PART`, its middle, which a masked form such as ``sk-...1706`` would not show):

* the model's ``repr``/``str``, ``model_dump()``/``model_dump_json()``/``dict()``,
  ``_identifying_params``, LangSmith params, ``to_json()``;
* every log record at DEBUG (this package's loggers, httpx2/httpcore2 - which log status lines
  and response headers, not request headers - uvicorn and the local server) during invoke,
  stream, retries and errors;
* exceptions for 401, 429, 500 and connection errors: ``str``, ``repr``, ``args``,
  ``response.data``, ``response.headers``, the formatted traceback, and the whole chain; also
  when a hostile server echoes the key back in its error body, a header, its status line or
  an event of its stream (and then in those DEBUG logs too);
* what tracing sees: callback arguments (``on_chat_model_start``'s serialized model and
  invocation params ...), the runs a tracer records, ``astream_events``;
* copies and pickles of a used model (which must keep working with their own key);
* image URLs fetched for token counting (the key is not sent to image hosts);
* ``afarensis-vision describe --local`` output;
* the files others commit: ``cassettes/`` (nothing key-like, no base64 run over 64 KiB, at most
  2 MiB in all) and the outputs of ``notebooks/*.ipynb`` (no ``sk-local-`` key). Both scans pass
  on an empty or missing folder.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import io
import json
import logging
import pickle
import re
import socket
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run
from PIL import Image
from pydantic import SecretStr

from langchain_afarensis_vision import (
    AfarensisDescribeImageTool,
    AfarensisError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ChatAfarensis,
    InternalServerError,
    RateLimitError,
    cli,
)
from langchain_afarensis_vision._sources.urls import UrlPolicy
from langchain_afarensis_vision.server import Faults, LocalAfarensisServer
from tests._support import ROOT, serving

pytestmark = pytest.mark.enable_socket

KEY = "sk-test-SECRET-9f8e7d6c5b4a39281706"
SECRET_PART = "SECRET-9f8e7d6c5b4a"
KEY_LIKE = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}")
BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]{12,}")
LOCAL_KEY = re.compile(r"sk-local-[A-Za-z0-9_-]+")
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/]{65537,}")
CASSETTES = ROOT / "cassettes"
NOTEBOOKS = ROOT / "notebooks"
MAX_CASSETTE_BYTES = 2 * 1024 * 1024


def assert_clean(*surfaces: Any, where: str = "") -> None:
    """No surface, as text, holds the key or its distinctive middle."""
    for surface in surfaces:
        text = surface if isinstance(surface, str) else repr(surface)
        assert KEY not in text, f"the key leaked {where}: ...{_around(text, KEY)}..."
        assert SECRET_PART not in text, (
            f"part of the key leaked {where}: {_around(text, SECRET_PART)}"
        )


def _around(text: str, needle: str) -> str:
    at = text.find(needle)
    return text[max(0, at - 80) : at + 80]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAfarensisServer]:
    with LocalAfarensisServer(ocr=False, api_key=KEY, log_level="debug") as running:
        yield running


class _Keep(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_LOGGERS = ("langchain_afarensis_vision", "httpx2", "httpcore2", "uvicorn", "uvicorn.error")


@pytest.fixture
def debug_logs() -> Iterator[_Keep]:
    """Every record of every logger at DEBUG; checked for the key after the test."""
    keep, root = _Keep(), logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *_LOGGERS)}
    root.addHandler(keep)
    for name in ("", *_LOGGERS):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield keep
    finally:
        root.removeHandler(keep)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert keep.records, "nothing was logged: the capture is not working"
    for record in keep.records:
        assert_clean(record.getMessage(), vars(record), where=f"in a {record.name} log record")


def conversation() -> list[BaseMessage]:
    return [HumanMessage("Hello")]


# -- the model object ----------------------------------------------------------------------------


def test_model_surfaces(server: LocalAfarensisServer) -> None:
    with ChatAfarensis(base_url=server.base_url, api_key=KEY) as model:
        model.invoke(conversation())  # a used model, with its transport made
        surfaces = [
            repr(model),
            str(model),
            f"{model}",
            model.model_dump(),
            model.model_dump_json(),
            model.model_dump(mode="json"),
            model.asdict(),
            json.dumps(model.asdict(), default=str),
            model._identifying_params,
            model._get_ls_params(),
            model.to_json(),
            dumpd(model),
            model.model_fields_set,
            vars(model).keys(),
            repr(model._transport.__dict__.keys()),
        ]
        assert_clean(*surfaces, where="in the model's representations")
        assert model.api_key is not None
        assert model.api_key.get_secret_value() == KEY  # still usable


def test_key_from_the_environment(
    server: LocalAfarensisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFARENSIS_API_KEY", KEY)
    monkeypatch.setenv("AFARENSIS_BASE_URL", server.base_url)
    with ChatAfarensis() as model:
        assert model.invoke(conversation()).content
        assert_clean(repr(model), model.model_dump_json(), model.asdict(), model._get_ls_params())


def test_describe_tool_surfaces(server: LocalAfarensisServer, tmp_path: Path) -> None:
    with ChatAfarensis(base_url=server.base_url, api_key=KEY) as model:
        tool = AfarensisDescribeImageTool(llm=model, allowed_dirs=[tmp_path])
        assert_clean(repr(tool), str(tool), tool.model_dump(), tool.args)


# -- logs -----------------------------------------------------------------------------------------


def test_logs_during_invoke_stream_and_batch(
    server: LocalAfarensisServer, debug_logs: _Keep
) -> None:
    with ChatAfarensis(base_url=server.base_url, api_key=KEY) as model:
        model.invoke(conversation())
        list(model.stream(conversation()))
        model.batch([conversation(), conversation()])

        async def both() -> None:
            await model.ainvoke(conversation())
            async for _ in model.astream(conversation()):
                pass

        asyncio.run(both())
    assert any(r.name.startswith("httpcore2") for r in debug_logs.records), "no transport logs"


def test_logs_during_retries(start: Callable[..., LocalAfarensisServer], debug_logs: _Keep) -> None:
    faulty = start(faults=Faults(error_rate=0.1, rate_limit_rate=0.5, retry_after=0.05), seed=2)
    with ChatAfarensis(base_url=faulty.base_url, api_key=KEY, max_retries=2) as model:
        results = model.batch([conversation()] * 8, return_exceptions=True)
    assert any("Retrying" in r.getMessage() for r in debug_logs.records), "no retry happened"
    for result in results:
        if isinstance(result, BaseException):
            assert_errors_clean(result)


# -- errors ---------------------------------------------------------------------------------------


def assert_errors_clean(error: BaseException) -> None:
    """The error and everything it chains to, as text; the API's answer it keeps."""
    assert isinstance(error, AfarensisError), repr(error)
    assert_clean(
        str(error),
        repr(error),
        error.args,
        error.message,
        "".join(traceback.format_exception(error)),
        where=f"in a {type(error).__name__}",
    )
    if error.response is not None:
        assert_clean(error.response, error.response.data, dict(error.response.headers))
        assert "authorization" not in {k.lower() for k in error.response.headers}
    cause: BaseException | None = error.__cause__ or error.__context__
    while cause is not None:
        assert_clean(str(cause), repr(cause), cause.args, where="in a chained exception")
        cause = cause.__cause__ or cause.__context__


@pytest.fixture
def start() -> Iterator[Callable[..., LocalAfarensisServer]]:
    started: list[LocalAfarensisServer] = []

    def run(**options: Any) -> LocalAfarensisServer:
        options.setdefault("api_key", KEY)
        server = LocalAfarensisServer(ocr=False, log_level="debug", **options).start()
        started.append(server)
        return server

    yield run
    for server in started:
        server.stop()


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def _error_for(base_url: str, streaming: bool, max_retries: int = 0) -> BaseException:
    with ChatAfarensis(base_url=base_url, api_key=KEY, max_retries=max_retries) as model:
        try:
            if streaming:
                list(model.stream(conversation()))
            else:
                model.invoke(conversation())
        except AfarensisError as error:
            return error
    raise AssertionError("no error")


@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_errors(
    start: Callable[..., LocalAfarensisServer],
    debug_logs: _Keep,
    streaming: bool,
) -> None:
    other_key = start(api_key="sk-local-another-key-0123456789")
    limited = start(faults=Faults(rate_limit_rate=1.0, retry_after=30))
    failing = start(faults=Faults(error_rate=1.0))
    expected: list[tuple[str, type[AfarensisError]]] = [
        (other_key.base_url, AuthenticationError),
        (limited.base_url, RateLimitError),
        (failing.base_url, InternalServerError),
        (f"http://127.0.0.1:{_closed_port()}/v1", APIConnectionError),
    ]
    for base_url, kind in expected:
        error = _error_for(base_url, streaming)
        assert isinstance(error, kind), repr(error)
        assert_errors_clean(error)


@pytest.mark.parametrize("streaming", [False, True])
def test_no_key_reachable_through_the_exception_chain(streaming: bool) -> None:
    """httpx2's exception (the cause) keeps its request: the key in it is masked."""
    error = _error_for(f"http://127.0.0.1:{_closed_port()}/v1", streaming=streaming)
    cause = error.__cause__
    assert cause is not None
    request = cause.request  # type: ignore[attr-defined]
    assert KEY not in str(dict(request.headers))
    assert request.headers["authorization"] == "Bearer [redacted]"


class _Echo(BaseHTTPRequestHandler):
    """A hostile API that echoes the key it was sent: in the body, a header and the reason.

    The first path segment picks the answer: ``401``, ``400``, ``500`` (JSON error bodies),
    ``text`` (a 400 whose plain-text body puts the key across the 2,000 characters kept),
    ``escaped`` (a 400 whose JSON spells the key with a ``\\u`` escape), ``percent`` and
    ``base64`` (a 400 that echoes it every character percent-encoded, or as Basic credentials),
    ``sse-error`` and ``sse-junk`` (a 200 stream carrying an error event or a non-JSON event).
    """

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        key = self.headers.get("authorization", "").removeprefix("Bearer ")
        kind = self.path.split("/")[1]
        if kind.startswith("sse"):
            return self._stream(kind, key)
        body = json.dumps(
            {
                "error": {
                    "message": f"Incorrect API key provided: {key}.",
                    "type": "invalid_request_error",
                    "code": f"bad_key_{key}",
                    "param": key,
                    "nested": [{"key": key}],
                }
            }
        ).encode()
        if kind == "text":
            body = ("x" * (2000 - 28) + key + " was refused").encode()
        elif kind == "escaped":  # the key spelt with a JSON escape: the same once parsed
            body = body.replace(key.encode(), b"\\u0073" + key[1:].encode())
        elif kind == "percent":  # as a URL would carry it, every character encoded
            body = body.replace(key.encode(), "".join(f"%{b:02X}" for b in key.encode()).encode())
        elif kind == "base64":
            body = body.replace(key.encode(), _basic(key).encode())
        status = int(kind) if kind.isdigit() else 400
        self._send(status, f"Bad key {key}", "application/json", body, key)

    def _stream(self, kind: str, key: str) -> None:
        error = {"error": {"message": f"key {key} revoked", "code": key}}
        data = json.dumps(error) if kind == "sse-error" else f"<{key}>"
        self._send(200, "OK", "text/event-stream", f"data: {data}\n\n".encode(), key)

    def _send(self, status: int, reason: str, kind: str, body: bytes, key: str) -> None:
        self.send_response(status, reason)
        self.send_header("content-type", kind)
        self.send_header("x-echo-key", key)
        self.send_header("www-authenticate", f'Bearer realm="{key}"')
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _basic(key: str) -> str:
    """``key`` as HTTP Basic credentials carry it: base64, after a user name."""
    return base64.b64encode(f"user:{key}".encode()).decode()


@pytest.fixture(scope="module")
def echo_host() -> Iterator[str]:
    with serving(_Echo) as base_url:
        yield base_url


@pytest.mark.parametrize(
    "kind", ["401", "400", "500", "text", "escaped", "percent", "base64", "sse-error", "sse-junk"]
)
@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
def test_a_server_echoing_the_key_does_not_leak_it(
    echo_host: str,
    debug_logs: _Keep,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    streaming: bool,
) -> None:
    """Nothing the answer echoes shows: not in the error, its chain, its response info (body
    and headers), the retry log, or any logger's DEBUG records (httpcore2 logs the status line
    and the response headers)."""
    monkeypatch.setattr("time.sleep", lambda seconds: None)  # the 500 is retried once
    error = _error_for(f"{echo_host}/{kind}/v1", streaming, max_retries=1)
    assert_errors_clean(error)
    assert isinstance(error, AfarensisError)
    shown = repr(error) + repr(error.response.data if error.response else None)
    assert SECRET_PART not in urllib.parse.unquote(shown), "the key leaked percent-encoded"
    assert _basic(KEY)[12:-4] not in shown, "the key leaked in base64"
    if isinstance(error, APIStatusError):
        assert error.response is not None
        assert "[API key]" in repr(error.response.data) + repr(dict(error.response.headers))
    assert any(r.name.startswith("httpcore2") for r in debug_logs.records), "no transport logs"


# -- tracing --------------------------------------------------------------------------------------


class Recorder(BaseCallbackHandler):
    """Everything the model hands to callbacks, as text."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        self.seen.append(json.dumps(serialized, default=repr))
        self.seen.append(repr(kwargs))
        self.seen.append(json.dumps(kwargs.get("invocation_params"), default=repr))

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.seen.append(repr(kwargs))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.seen.append(response.model_dump_json())
        self.seen.append(repr(kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(repr(error))
        self.seen.append(repr(kwargs))


class MemoryTracer(BaseTracer):
    """A tracer that keeps its runs, as LangSmith's would send them."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []

    def _persist_run(self, run: Run) -> None:
        self.runs.append(run)


def test_tracing(server: LocalAfarensisServer) -> None:
    recorder, tracer = Recorder(), MemoryTracer()
    config: RunnableConfig = {"callbacks": [recorder, tracer], "metadata": {"case": "secrets"}}
    with ChatAfarensis(base_url=server.base_url, api_key=KEY) as model:
        model.invoke(conversation(), config=config)
        list(model.stream(conversation(), config=config))

        async def events() -> list[Any]:
            return [e async for e in model.astream_events(conversation(), version="v2")]

        stream_events = asyncio.run(events())
    broken = ChatAfarensis(
        base_url=f"http://127.0.0.1:{_closed_port()}/v1", api_key=KEY, max_retries=0
    )
    with broken, pytest.raises(APIConnectionError):
        broken.invoke(conversation(), config=config)
    assert recorder.seen
    assert tracer.runs
    assert_clean(*recorder.seen, where="in callback arguments")
    assert_clean(*(run.model_dump_json() for run in tracer.runs), where="in a traced run")
    assert_clean(json.dumps(stream_events, default=repr), where="in astream_events")
    serialized = json.dumps(tracer.runs[0].serialized, default=repr)
    assert "ChatAfarensis" in serialized  # the model is there, its key is not


# -- copies and pickles ---------------------------------------------------------------------------


def test_copies_and_pickles_of_a_used_model(server: LocalAfarensisServer) -> None:
    """Copies of a used model work, each with its own HTTP clients and its own fields, and
    show no key. (A pickle carries the key, as pydantic's SecretStr does, so that a model can
    travel to a worker process: a pickle is as secret as the key.)"""
    with ChatAfarensis(base_url=server.base_url, api_key=KEY) as model:
        model.invoke(conversation())
        copies = [
            copy.copy(model),
            copy.deepcopy(model),
            model.model_copy(),
            model.model_copy(deep=True),
            pickle.loads(pickle.dumps(model)),
        ]
        for duplicate in copies:
            assert_clean(repr(duplicate), duplicate.model_dump_json(), duplicate.asdict())
            assert duplicate.invoke(conversation()).content
            assert duplicate._transport is not model._transport
            duplicate.close()


def test_a_copy_uses_its_own_fields(
    server: LocalAfarensisServer, start: Callable[..., LocalAfarensisServer]
) -> None:
    """``model_copy(update=...)`` of a used model talks to its new server with its new key
    (not with the original's transport, key and retry policy)."""
    other = start(api_key="sk-local-other-server-0123456789")
    with ChatAfarensis(base_url=server.base_url, api_key=KEY) as model:
        model.invoke(conversation())
        moved = model.model_copy(
            update={"base_url": other.base_url, "api_key": SecretStr(other.api_key)}
        )
        assert moved.invoke(conversation()).content
        assert moved._transport.base_url == other.base_url
        moved.close()


# -- image URLs fetched for token counting --------------------------------------------------------


def test_the_key_is_not_sent_to_image_hosts(server: LocalAfarensisServer) -> None:
    png = io.BytesIO()
    Image.new("RGB", (1200, 900), "white").save(png, "PNG")
    received: list[dict[str, str]] = []

    class Host(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(dict(self.headers.items()))
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(png.getvalue())))
            self.end_headers()
            self.wfile.write(png.getvalue())

        def log_message(self, format: str, *args: Any) -> None:
            return

    host = ThreadingHTTPServer(("127.0.0.1", 0), Host)
    thread = threading.Thread(target=host.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{host.server_address[1]}/photo.png"
        message = HumanMessage(content=[{"type": "image_url", "image_url": {"url": url}}])
        with ChatAfarensis(base_url=server.base_url, api_key=KEY) as model:
            local = UrlPolicy(allow_private=["127.0.0.1"])  # the image host is on this machine
            tokens = model.get_num_tokens_from_messages(
                [message], fetch_image_sizes=True, url_policy=local
            )
    finally:
        host.shutdown()
        host.server_close()
        thread.join(5)
    assert tokens > 765  # 1200 x 900 is 4 tiles: the image was fetched and measured
    assert received
    for headers in received:
        assert "authorization" not in {k.lower() for k in headers}
        assert_clean(headers, where="in a request to an image host")


# -- the command line -----------------------------------------------------------------------------


def test_cli_describe_local(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    debug_logs: _Keep,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AFARENSIS_API_KEY", KEY)  # set, but --local must not use or show it
    image = tmp_path / "red.png"
    Image.new("RGB", (64, 48), "red").save(image)
    assert cli.main(["describe", "--local", str(image)]) == 0
    assert cli.main(["describe", "--local", "--json", str(image)]) == 0
    out, err = capsys.readouterr()
    assert "PNG" in out
    for text in (out, err, "\n".join(r.getMessage() for r in debug_logs.records)):
        assert_clean(text, where="in the CLI's output")
        assert not LOCAL_KEY.search(text), LOCAL_KEY.search(text)
        assert not KEY_LIKE.search(text), KEY_LIKE.search(text)


# -- files others commit --------------------------------------------------------------------------


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file()) if folder.is_dir() else []


def scan_cassettes(folder: Path) -> list[str]:
    """Problems in the cassettes under ``folder`` (none if it is empty or missing)."""
    problems, total = [], 0
    for path in _files(folder):
        data = path.read_bytes()
        total += len(data)
        text = data.decode("utf-8", "replace")
        name = path.relative_to(folder)
        problems += [f"{name}: key-like {m.group()[:12]}..." for m in KEY_LIKE.finditer(text)]
        problems += [f"{name}: bearer token {m.group()[:12]}..." for m in BEARER.finditer(text)]
        squeezed = re.sub(rb"\\|\s", b"", data)  # YAML folds long strings over lines
        problems += [
            f"{name}: base64 run of {len(m.group()):,} chars" for m in BASE64_RUN.finditer(squeezed)
        ]
    if total > MAX_CASSETTE_BYTES:
        problems.append(f"cassettes total {total:,} bytes (> {MAX_CASSETTE_BYTES:,})")
    return problems


def _output_text(output: dict[str, Any]) -> str:
    parts = [output.get("text", ""), *output.get("traceback", [])]
    parts += [v if isinstance(v, str) else json.dumps(v) for v in output.get("data", {}).values()]
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


def scan_notebooks(folder: Path) -> list[str]:
    """Keys in the outputs of the notebooks under ``folder`` (none if empty or missing)."""
    problems = []
    for path in _files(folder, "*.ipynb"):
        notebook = json.loads(path.read_text())
        for n, cell in enumerate(notebook.get("cells", [])):
            for output in cell.get("outputs", []):
                text = _output_text(output)
                for found in (*LOCAL_KEY.finditer(text), *KEY_LIKE.finditer(text)):
                    problems.append(f"{path.name} cell {n}: {found.group()[:14]}...")
    return problems


def test_cassettes_hold_no_secrets_or_big_images() -> None:
    assert scan_cassettes(CASSETTES) == []


def test_notebook_outputs_hold_no_keys() -> None:
    assert scan_notebooks(NOTEBOOKS) == []


def test_the_scans_find_what_they_look_for(tmp_path: Path) -> None:
    """The scanners themselves: silent on an empty or missing folder, loud on each problem."""
    assert scan_cassettes(tmp_path / "missing") == []
    assert scan_notebooks(tmp_path / "missing") == []
    assert scan_cassettes(tmp_path) == []
    (tmp_path / "a.yaml").write_text(
        f'authorization:\n- Bearer {"x" * 20}\nkey: {KEY}\nbody: "{"QUJD" * 9000}\\\n'
        f'  {"QUJD" * 9000}"\n'
    )
    problems = scan_cassettes(tmp_path)
    assert len(problems) == 3, problems
    (tmp_path / "big.bin").write_bytes(b"\0" * MAX_CASSETTE_BYTES)
    assert any("total" in p for p in scan_cassettes(tmp_path))
    cell = {
        "outputs": [{"output_type": "stream", "text": ["export AFARENSIS_API_KEY=sk-local-abc\n"]}]
    }
    (tmp_path / "n.ipynb").write_text(json.dumps({"cells": [cell]}))
    assert scan_notebooks(tmp_path) != []
