"""``afarensis-vision``: tokens offline, describe on the configured API or an embedded server,
demo, and serve."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx2
import pytest

from langchain_afarensis_vision import cli
from langchain_afarensis_vision.server import LocalAfarensisServer
from langchain_afarensis_vision.server._cli import serve_main
from tests._support import SHARED_IMAGES

pytestmark = pytest.mark.enable_socket


def _json_out(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    out = capsys.readouterr().out
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_tokens_is_offline_and_exact(capsys: pytest.CaptureFixture[str]) -> None:
    images = [str(SHARED_IMAGES / n) for n in ("hopper.tif", "iss634.gif", "flower.jpg")]
    assert cli.main(["tokens", "--json", "--detail", "low", *images]) == 0
    rows = _json_out(capsys)
    assert rows[0] == {
        "image": "hopper.tif",
        "source": "TIFF 128x128",
        "sent": "image/png 128x128",
        "bytes_before": 49597,
        "bytes_after": rows[0]["bytes_after"],
        "tokens": 85,
        "changed": True,
    }
    assert rows[1]["refused"] == "animated_gif_not_supported"
    assert rows[2]["tokens"] == 85
    assert rows[2]["changed"] is False


def test_tokens_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tokens", str(SHARED_IMAGES)]) == 0
    out = capsys.readouterr().out
    assert "11 of 12 images sent" in out
    assert "refused (animated_gif_not_supported)" in out


def test_describe_without_a_key_uses_an_embedded_server_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["describe", "--json", str(SHARED_IMAGES / "flower2.jpg")]) == 0
    captured = capsys.readouterr()
    assert "AFARENSIS_API_KEY is not set" in captured.err
    assert "not GPT-4V" in captured.err
    (row,) = json.loads(captured.out)
    assert "300 x 225" in row["answer"]


def test_describe_uses_the_configured_api(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalAfarensisServer(ocr=False) as server:
        monkeypatch.setenv("AFARENSIS_API_KEY", server.api_key)
        monkeypatch.setenv("AFARENSIS_BASE_URL", server.base_url)
        args = ["describe", "-q", "Colours?", "--detail", "high", str(SHARED_IMAGES / "hopper.png")]
        assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no embedded server announced
    assert "detail 'high'" in captured.out
    assert "1 of 1 images sent" in captured.out


def test_describe_reports_errors_per_image(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with LocalAfarensisServer(ocr=False) as server:
        monkeypatch.setenv("AFARENSIS_API_KEY", "sk-wrong")
        monkeypatch.setenv("AFARENSIS_BASE_URL", server.base_url)
        assert cli.main(["describe", "--json", str(SHARED_IMAGES / "hopper.png")]) == 1
    (row,) = _json_out(capsys)
    assert "401" in str(row["error"])


def test_demo_describes_a_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", str(SHARED_IMAGES)]) == 0
    out = capsys.readouterr().out
    assert out.count("I am the local Afarensis engine") == 11
    assert "11 of 12 images sent" in out


def test_serve_prints_how_to_connect(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=serve_main, kwargs={"port": 0, "stop": stop})
    thread.start()
    try:
        deadline, out = time.monotonic() + 10, ""
        while "AFARENSIS_API_KEY=" not in out:
            assert time.monotonic() < deadline
            time.sleep(0.05)
            out += capsys.readouterr().out
        lines = dict(
            line.removeprefix("export ").split("=", 1)
            for line in out.splitlines()
            if line.startswith("export ")
        )
        models = httpx2.get(
            lines["AFARENSIS_BASE_URL"] + "/models",
            headers={"authorization": f"Bearer {lines['AFARENSIS_API_KEY']}"},
        )
        assert models.json()["data"][0]["id"] == "gpt-4-vision-preview"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.filterwarnings(
    "ignore::langchain_afarensis_vision.document_loaders.NoImagesFoundWarning"
)
def test_no_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["describe", str(tmp_path)]) == 1
    assert "No images found" in capsys.readouterr().err
