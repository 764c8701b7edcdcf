"""``afarensis-vision serve`` as users meet it: the installed entry point in a subprocess, how to
connect, each request logged (never the key or image data), Ctrl+C and SIGTERM, a busy port."""

from __future__ import annotations

import base64
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._cli_support import ENTRY_POINT, json_records, one_error_line, run_cli
from tests._support import TEST_IMAGES

pytestmark = pytest.mark.enable_socket

HOPPER = str(TEST_IMAGES / "hopper.png")


def _ctrl_c_as_in_a_terminal() -> None:
    """SIGINT as a terminal's foreground process has it: a runner that started these tests in
    the background (``cmd &`` in a script) passes SIGINT down ignored, and Python then installs
    no KeyboardInterrupt handler, so the Ctrl+C test would wait forever."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _serve(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``afarensis-vision serve`` started, and the variables it printed for clients."""
    process = subprocess.Popen(
        [str(ENTRY_POINT), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )
    assert process.stdout is not None
    exports: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("export "):
            name, value = line.removeprefix("export ").strip().split("=", 1)
            exports[name] = value
        if line.startswith("Press Ctrl+C"):
            break
    return process, exports


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    process, exports = _serve("--api-key", "sk-cli-serve-secret-key-0123456789")
    try:
        yield process, exports
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_serve_logs_each_request_without_the_key_or_the_image(
    served: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, env = served
    key = env["AFARENSIS_API_KEY"]
    described = run_cli("describe", "--json", HOPPER, env=env)
    assert described.code == 0, described
    wrong = run_cli("describe", HOPPER, env={**env, "AFARENSIS_API_KEY": "sk-wrong-but-secret-42"})
    assert wrong.code == 1
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Stopping." in out
    lines = err.strip().splitlines()
    tokens = json_records(described)[0]["usage"]["total_tokens"]
    assert re.search(
        r" INFO POST /v1/chat/completions 200 [0-9.]+ ms model=gpt-4-vision-preview images=1 "
        rf"tokens={tokens} id=req_[0-9a-f]{{32}}$",
        lines[0],
    ), lines
    assert re.search(
        r" INFO POST /v1/chat/completions 401 [0-9.]+ ms id=req_[0-9a-f]{32}$", lines[1]
    ), lines
    encoded = base64.b64encode(Path(HOPPER).read_bytes()).decode()
    for secret in (key, key[-12:], "sk-wrong-but-secret-42", encoded[:32], encoded[-32:]):
        assert secret not in err


def test_serve_stops_cleanly_on_sigterm_and_log_level_warning_is_quiet() -> None:
    process, exports = _serve("--log-level", "warning")
    assert run_cli("describe", HOPPER, env=exports).code == 0
    process.terminate()
    _, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "POST" not in err


def test_serve_on_a_busy_port_isone_error_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_error_line(run_cli("serve", "--port", str(port)), 2)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port 0" in line
