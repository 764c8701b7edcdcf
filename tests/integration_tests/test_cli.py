"""``afarensis-vision`` as users meet it: the installed entry point, run in a subprocess.

With and without the ``server`` extra (a venv that really lacks starlette, uvicorn and
jsonschema: see ``tests/_cli_support.py``); against a local server standing in for the API
(``AFARENSIS_BASE_URL``), against a closed port, and on the embedded server (``--local``,
``demo``). Exit codes: 0 done, 1 an image failed or was refused, 2 a usage error.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from langchain_afarensis_vision import __version__
from langchain_afarensis_vision.cli import _main as cli
from langchain_afarensis_vision.cli._commands import sample_images
from langchain_afarensis_vision.server import LocalAfarensisServer
from tests._cli_support import ENTRY_POINT, json_records, one_error_line, plain_install, run_cli
from tests._support import TEST_IMAGES
from tests.integration_tests.conftest import ImageHost

pytestmark = pytest.mark.enable_socket

HOPPER = str(TEST_IMAGES / "hopper.png")
ANIMATED = str(TEST_IMAGES / "iss634.gif")
INTRO = "I am the local Afarensis engine"
NO_OCR = "OCR is not available"


@pytest.fixture(scope="session")
def plain_entry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``afarensis-vision`` installed without the ``server`` extra."""
    return plain_install(tmp_path_factory.mktemp("plain-install"))


@pytest.fixture
def api_env(afarensis_server: LocalAfarensisServer) -> dict[str, str]:
    """The environment that points the CLI at a local server standing in for the API."""
    return {
        "AFARENSIS_API_KEY": afarensis_server.api_key,
        "AFARENSIS_BASE_URL": afarensis_server.base_url,
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- without the server extra, without a key -------------------------------------------------


def test_the_plain_install_lacks_the_server_extra(plain_entry: Path) -> None:
    python = plain_entry.parent / "python"
    probe = (
        "import importlib.util as u; "
        "print([u.find_spec(m) is None for m in ('starlette', 'uvicorn', 'jsonschema')])"
    )
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[True, True, True]"


@pytest.mark.parametrize(
    "args",
    [
        ["describe", "--local", HOPPER],
        ["demo"],
        ["serve", "--port", "0"],
        ["caption", "--local", HOPPER, "-o", "x.jsonl"],
    ],
    ids=["describe-local", "demo", "serve", "caption-local"],
)
def test_without_the_extra_one_line_names_it(
    plain_entry: Path, args: list[str], tmp_path: Path
) -> None:
    line = one_error_line(run_cli(*args, entry=plain_entry, cwd=tmp_path), 2)
    assert "'server' extra" in line
    assert 'pip install ".[server]"' in line


def test_without_a_key_describe_names_the_variable_and_local(plain_entry: Path) -> None:
    for entry in (plain_entry, ENTRY_POINT):
        run = run_cli("describe", HOPPER, entry=entry)
        line = one_error_line(run, 2)
        assert "AFARENSIS_API_KEY" in line
        assert "--local" in line
        assert run.out == ""  # no offline answers in place of the API's


def test_without_a_key_caption_does_not_fall_back_either(tmp_path: Path) -> None:
    line = one_error_line(run_cli("caption", HOPPER, "-o", str(tmp_path / "out.jsonl")), 2)
    assert "AFARENSIS_API_KEY" in line
    assert not (tmp_path / "out.jsonl").exists()


def test_tokens_works_without_the_extra(plain_entry: Path) -> None:
    run = run_cli("tokens", HOPPER, entry=plain_entry)
    assert run.code == 0, run
    assert "255 image tokens" in run.out


# -- the API: answers, failures, URLs --------------------------------------------------------


def test_describe_json_records_are_fields(api_env: dict[str, str]) -> None:
    run = run_cli(
        "describe",
        "--json",
        "--detail",
        "low",
        "--max-tokens",
        "40",
        str(TEST_IMAGES / "hopper.tif"),
        env=api_env,
    )
    assert run.code == 0, run
    assert run.err == ""  # no embedded server announced
    (record,) = json_records(run)
    assert {
        k: record[k]
        for k in (
            "image",
            "format",
            "source_width",
            "source_height",
            "mime_type",
            "width",
            "height",
            "changed",
            "detail",
            "image_tokens",
            "model",
            "error",
        )
    } == {
        "image": str(TEST_IMAGES / "hopper.tif"),
        "format": "TIFF",
        "source_width": 128,
        "source_height": 128,
        "mime_type": "image/png",
        "width": 128,
        "height": 128,
        "changed": True,
        "detail": "low",
        "image_tokens": 85,
        "model": "gpt-4-vision-preview",
        "error": None,
    }
    assert record["source_bytes"] == 49597
    assert isinstance(record["bytes"], int)
    usage = record["usage"]
    assert usage["input_tokens"] > 85
    assert 0 < usage["output_tokens"] <= 40
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert INTRO in record["answer"]


def test_describe_with_a_question_a_model_and_the_text_view(api_env: dict[str, str]) -> None:
    run = run_cli(
        "describe",
        "-q",
        "Colours?",
        "--model",
        "gpt-4-1106-vision-preview",
        "--detail",
        "high",
        HOPPER,
        env=api_env,
    )
    assert run.code == 0, run
    answer = [line for line in run.out.splitlines() if line.startswith("    ")]
    assert answer
    assert "detail 'high'" in run.out
    assert "1 of 1 images described" in run.out


def test_a_wrong_key_fails_every_image_with_the_apis_error_and_stops(
    api_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**api_env, "AFARENSIS_API_KEY": "sk-wrong-key-000000000000"}
    flower = str(Path(sample_images()) / "flower_small.jpg")
    animated = tmp_path / "blink.gif"
    frames = [Image.new("L", (8, 8), shade) for shade in (0, 255)]
    frames[0].save(animated, save_all=True, append_images=frames[1:])
    run = run_cli("describe", "--json", HOPPER, flower, str(animated), env=env)
    assert run.code == 1
    # Stopped after the first (every request would fail alike), yet a record for every image.
    sent, unsent, refused = json_records(run)
    error = sent["error"]
    assert {k: error[k] for k in ("type", "code", "status")} == {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "status": 401,
    }
    assert "AFARENSIS_API_KEY" in error["message"]
    assert re.fullmatch(r"req_[0-9a-f]{32}", error["request_id"])
    assert (unsent["image"], unsent["format"], unsent["width"]) == (flower, "JPEG", 240)
    assert {k: unsent["error"][k] for k in ("type", "code", "status", "request_id")} == {
        "type": "authentication_error",
        "code": "invalid_api_key",
        "status": None,
        "request_id": None,
    }
    assert unsent["error"]["message"].startswith("not sent: every request would fail alike")
    assert (unsent["answer"], unsent["usage"]) == (None, None)
    assert refused["error"]["code"] == "animated_gif_not_supported"  # its own refusal
    assert "2 images not sent" in run.err
    text = run_cli("describe", HOPPER, env=env)
    assert text.code == 1
    assert "0 of 1 images described (0 refused before sending, 1 failed)" in text.out
    assert "sent:" not in text.out


def test_a_wrong_base_url_or_model_says_where_to_look(api_env: dict[str, str]) -> None:
    base_url = api_env["AFARENSIS_BASE_URL"].removesuffix("/v1")
    run = run_cli("describe", "--json", HOPPER, env={**api_env, "AFARENSIS_BASE_URL": base_url})
    assert run.code == 1
    message = json_records(run)[0]["error"]["message"]
    assert f"check AFARENSIS_BASE_URL={base_url}: the API's base URL ends in /v1" in message
    run = run_cli("describe", "--json", "--model", "gpt-5", HOPPER, env=api_env)
    assert run.code == 1
    error = json_records(run)[0]["error"]
    assert (error["code"], error["status"]) == ("model_not_found", 404)
    assert "--model" in error["message"]


def test_a_connection_failure_names_the_url_and_the_variable() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    run = run_cli("describe", HOPPER, env={"AFARENSIS_API_KEY": "sk-x", "AFARENSIS_BASE_URL": url})
    assert run.code == 1, run
    flat = " ".join(run.out.split())
    assert f"cannot reach {url} (" in flat
    assert "or set base_url (or AFARENSIS_BASE_URL) to the API's base URL" in flat
    assert flat.count("cannot reach") == 1
    assert "0 of 1 images described (0 refused before sending, 1 failed)" in run.out
    (record,) = json_records(
        run_cli(
            "describe",
            "--json",
            HOPPER,
            env={"AFARENSIS_API_KEY": "sk-x", "AFARENSIS_BASE_URL": url},
        )
    )
    assert record["error"]["type"] == "connection_error"
    assert record["error"]["status"] is None


def test_describe_takes_http_urls(api_env: dict[str, str], image_host: ImageHost) -> None:
    image_host.routes["/cli/hopper.png"] = (200, Path(HOPPER).read_bytes(), "image/png")
    run = run_cli("describe", "--json", image_host.url("/cli/hopper.png"), env=api_env)
    assert run.code == 0, run
    (record,) = json_records(run)
    assert record["image"] == image_host.url("/cli/hopper.png")
    assert record["format"] is None  # the API fetched it: nothing was read here
    assert "128 x 128" in record["answer"]
    text = run_cli("describe", image_host.url("/cli/hopper.png"), env=api_env)
    assert "a URL: the API fetches it itself" in text.out
    assert "http:/127" not in text.out + text.err


def test_an_animation_is_refused_with_the_clis_option_and_sent_with_it(
    api_env: dict[str, str],
) -> None:
    refused = run_cli("describe", ANIMATED, HOPPER, env=api_env)
    assert refused.code == 1  # one of two refused
    assert "--first-frame sends its first frame" in refused.out
    assert "first_frame=True" not in refused.out
    assert "1 of 2 images described (1 refused before sending, 0 failed)" in refused.out
    sent = run_cli("describe", "--first-frame", "--json", ANIMATED, env=api_env)
    assert sent.code == 0, sent
    assert json_records(sent)[0]["mime_type"] in ("image/png", "image/gif")


# -- tokens ----------------------------------------------------------------------------------


def test_tokens_is_offline_exact_and_fails_on_a_refusal() -> None:
    images = [str(TEST_IMAGES / n) for n in ("hopper.tif", "iss634.gif", "flower.jpg")]
    run = run_cli("tokens", "--json", "--detail", "low", *images)
    assert run.code == 1  # one refused
    tif, gif, jpg = json_records(run)
    assert (tif["format"], tif["mime_type"], tif["source_bytes"], tif["image_tokens"]) == (
        "TIFF",
        "image/png",
        49597,
        85,
    )
    assert gif["error"]["code"] == "animated_gif_not_supported"
    assert gif["error"]["type"] == "invalid_request_error"
    assert gif["error"]["status"] is None
    assert jpg["changed"] is False
    assert "answer" not in jpg


def test_tokens_looks_in_subfolders_with_recursive(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hopper.png").write_bytes(Path(HOPPER).read_bytes())
    (tmp_path / "top.png").write_bytes(Path(HOPPER).read_bytes())
    assert len(json_records(run_cli("tokens", "--json", str(tmp_path)))) == 1
    assert len(json_records(run_cli("tokens", "--json", "-r", str(tmp_path)))) == 2


def test_tokens_table_never_says_sent() -> None:
    all_ok = run_cli("tokens", HOPPER, str(TEST_IMAGES / "flower.jpg"))
    assert all_ok.code == 0, all_ok
    samples = run_cli("tokens", str(TEST_IMAGES))
    assert samples.code == 1
    assert "11 of 12 images accepted (1 refused)" in samples.out
    assert "refused (animated_gif_not_supported)" in samples.out
    url = run_cli("tokens", "http://127.0.0.1:9/photo.jpg")  # nothing is fetched
    assert url.code == 1
    assert "skipped (url_not_fetched)" in url.out
    assert "sent" not in (all_ok.out + samples.out + url.out).lower()


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    process = subprocess.Popen(
        [str(ENTRY_POINT), "tokens", *[str(TEST_IMAGES)] * 100],  # > a 64 KiB pipe,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdout.readline().startswith("Each image")
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(60) == 1
    assert "Traceback" not in err


# -- demo ------------------------------------------------------------------------------------


def test_demo_runs_anywhere_on_its_sample_images_and_says_the_disclaimer_once(
    tmp_path: Path,
) -> None:
    run = run_cli("demo", cwd=tmp_path)
    assert run.code == 0, run
    assert "(the demo always uses it)" in run.err
    assert "--local was given" not in run.err
    assert "5 of 5 images described" in run.out
    assert run.out.count(INTRO) == 1
    assert run.out.count(NO_OCR) <= 1
    assert run.out.count("Image 1: a ") == 5  # the measurements, once per image
    lines = run.out.splitlines()
    starts = [i for i, line in enumerate(lines) if line.endswith(("tokens", "(unchanged)"))]
    assert len(starts) == 5
    for start in starts:  # every line of an answer is indented, up to the blank line after it
        end = lines.index("", start)
        assert end > start + 1
        assert all(line.startswith("    ") for line in lines[start + 1 : end])


def test_demo_on_a_folder_given(tmp_path: Path) -> None:
    run = run_cli("demo", "--json", str(TEST_IMAGES), cwd=tmp_path)
    assert run.code == 1  # the animated GIF is refused
    records = json_records(run)
    assert len(records) == 12
    assert sum(r["error"] is None for r in records) == 11


# -- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["describe"],
        ["describe", "--max-tokens", "0", HOPPER],
        ["describe", "--max-tokens", "5000", HOPPER],
        ["tokens", "--detail", "ultra", HOPPER],
        ["serve", "--port", "70000"],
        ["frobnicate"],
    ],
    ids=["no-images", "max-tokens", "over-max-tokens", "detail", "port", "command"],
)
def test_bad_options_exit_2(args: list[str]) -> None:
    run = run_cli(*args)
    assert run.code == 2, run
    assert "usage:" in run.err
    assert "Traceback" not in run.err


def test_no_images_found_is_a_usage_error(tmp_path: Path) -> None:
    for command in ("describe", "tokens", "demo"):
        line = one_error_line(run_cli(command, str(tmp_path), env={"AFARENSIS_API_KEY": "sk-x"}), 2)
        assert "no images found" in line


def test_version_and_help_on_every_option() -> None:
    version = run_cli("--version")
    assert (version.code, version.out.strip()) == (0, f"afarensis-vision {__version__}")
    helped = run_cli("describe", "--help")
    assert helped.code == 0
    assert "--first-frame" in helped.out
    commands = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {
        *("describe", "demo", "tokens", "caption", "serve"),
        *("index", "search", "ask"),
    }
    for name, parser in commands.choices.items():
        for action in parser._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    options = {a.dest for a in commands.choices["describe"]._actions}
    assert {"model", "max_tokens", "first_frame", "detail", "json", "local"} <= options


def test_an_entry_that_names_nothing_is_one_warning_line(tmp_path: Path) -> None:
    run = run_cli("tokens", HOPPER, str(tmp_path / "nope" / "*.jpg"))
    assert run.code == 0, run
    [line] = run.err.strip().splitlines()
    assert line.startswith("afarensis-vision tokens: warning: ")
    assert "nope" in line
    assert "Warning" not in line  # not Python's two-line warning format


def test_tokens_show_writes_what_the_model_sees(tmp_path: Path) -> None:
    photo = tmp_path / "in" / "photo.jpg"
    photo.parent.mkdir()
    Image.linear_gradient("L").convert("RGB").resize((4032, 3024)).save(photo, quality=80)
    run = run_cli("tokens", "--show", str(photo), HOPPER, cwd=tmp_path)
    assert run.code == 0, run
    assert (
        "4032x3024 at detail auto (as high) -> fits 2048: 2048x1536 -> shortest side 768: "
        "1024x768 -> 2x2 tiles of 512 -> 4 x 170 + 85 = 765 tokens"
    ) in " ".join(run.out.split())  # wrapped under its image
    assert "picture: photo.jpg.tokens.png" in run.out
    assert "2 pictures written to ./" in run.out
    with Image.open(tmp_path / "photo.jpg.tokens.png") as picture:
        assert picture.format == "PNG"
        assert picture.width == 768  # the 1024x768 sent, scaled down, a caption below
        assert picture.height > 576
    with Image.open(tmp_path / "hopper.png.tokens.png") as picture:
        assert picture.size[0] >= 128


def test_tokens_show_dir_and_json(tmp_path: Path) -> None:
    out = tmp_path / "pictures" / "new"
    twice = [HOPPER, str(TEST_IMAGES / "iss634.gif"), "http://127.0.0.1:9/x.jpg", HOPPER]
    run = run_cli("tokens", "--json", "--show-dir", str(out), *twice)
    assert run.code == 1  # the animated GIF is refused, the URL skipped
    hopper, gif, url, again = json_records(run)
    assert hopper["picture"] == str(out / "hopper.png.tokens.png")
    assert again["picture"] == str(out / "hopper.png-2.tokens.png")  # never overwritten
    assert hopper["tiles"].endswith("1 x 170 + 85 = 255 tokens")
    assert gif["picture"] is None
    assert url["picture"] is None
    assert sorted(p.name for p in out.iterdir()) == [
        "hopper.png-2.tokens.png",
        "hopper.png.tokens.png",
    ]


def test_tokens_without_show_writes_nothing(tmp_path: Path) -> None:
    run = run_cli("tokens", "--json", HOPPER, cwd=tmp_path)
    assert run.code == 0
    assert "picture" not in json_records(run)[0]
    assert list(tmp_path.iterdir()) == []
    usage = run_cli("tokens", "--show-dir", str(Path(HOPPER)), HOPPER)  # a file, not a folder
    assert "--show-dir" in one_error_line(usage, 2)
