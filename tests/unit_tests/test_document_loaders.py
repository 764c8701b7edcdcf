"""AfarensisImageLoader: inputs, metadata, skipping, laziness, bounded concurrency, progress."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import threading
import warnings
from collections.abc import AsyncGenerator, Callable, Generator
from contextlib import aclosing
from pathlib import Path
from typing import Any, cast

import httpx2
import pytest
from langchain_core.documents import Document
from PIL import Image

from langchain_afarensis_vision import ChatAfarensis, document_loaders
from langchain_afarensis_vision._progress import Progress
from langchain_afarensis_vision._sources.read import decode_data_url
from langchain_afarensis_vision.chat_models._messages import DEFAULT_QUESTION
from langchain_afarensis_vision.document_loaders import (
    AfarensisImageLoader,
    ImageSkippedWarning,
    NoImagesFoundWarning,
    iter_image_sources,
)
from langchain_afarensis_vision.errors import (
    AuthenticationError,
    BadRequestError,
    InvalidImageError,
    MissingAPIKeyError,
)
from langchain_afarensis_vision.images import PreparedImage, prepare_image
from tests._mock_api import MockAPI, completion, error
from tests._schema import assert_valid
from tests._support import TEST_IMAGES, raised_beside_fifo

Make = Callable[..., ChatAfarensis]
KEY = "sk-test-secret-key-0123456789"
MODEL = "gpt-4-vision-preview-1106"
GOOD = ["flower.webp", "hopper.bmp", "hopper.jpg", "hopper.png"]
BAD = {
    "iss634.gif": "animated_gif_not_supported",
    "notes.png": "invalid_image_format",
    "truncated.jpg": "invalid_image",
}


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Four good images, an animated GIF, a truncated JPEG and a text file named .png."""
    folder = tmp_path / "images"
    folder.mkdir()
    for name in [*GOOD, "iss634.gif"]:
        shutil.copy(TEST_IMAGES / name, folder / name)
    flower = (TEST_IMAGES / "flower.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(flower[: len(flower) // 2])
    (folder / "notes.png").write_text("shopping list: milk, eggs\n")
    return folder


def sent_image(request: httpx2.Request) -> tuple[str, str]:
    """The (question, 'FORMAT WxH' of the image) a request carries."""
    body = json.loads(request.content)
    text, image = body["messages"][0]["content"]
    with Image.open(io.BytesIO(decode_data_url(image["image_url"]["url"]))) as sent:
        return text["text"], f"{sent.format} {sent.width}x{sent.height}"


def describe(request: httpx2.Request) -> httpx2.Response:
    """A scripted answer that honestly names the image it was sent."""
    return httpx2.Response(200, json=completion(f"a {sent_image(request)[1]} image", model=MODEL))


def expected_metadata(path: Path, detail: str = "auto") -> dict[str, Any]:
    prepared = prepare_image(path, detail)  # type: ignore[arg-type]
    return {
        "source": str(path),
        "format": prepared.format,
        "source_width": prepared.source_size[0],
        "source_height": prepared.source_size[1],
        "source_bytes": prepared.source_bytes,
        "mime_type": prepared.mime_type,
        "width": prepared.width,
        "height": prepared.height,
        "bytes": len(prepared.data),
        "changed": prepared.changed,
        "detail": detail,
        "image_tokens": prepared.tokens,
        "bytes_sent": len(prepared.data),  # the old name, kept for one release
        "model": MODEL,
    }


def sources(documents: list[Document]) -> list[str]:
    return [Path(d.metadata["source"]).name for d in documents]


def skipped(records: list[warnings.WarningMessage]) -> dict[str, str]:
    """{file name: error code or exception name} of the ImageSkippedWarnings recorded."""
    out = {}
    for record in records:
        warning = record.message
        assert isinstance(warning, ImageSkippedWarning)
        assert warning.source in str(warning)
        code = getattr(warning.error, "code", None) or type(warning.error).__name__
        out[Path(warning.source).name] = code
    return out


@pytest.fixture
def prepared_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the loader prepares, in order (thread-safe: alazy_load prepares in threads)."""
    log: list[str] = []
    lock = threading.Lock()

    def logged(source: str, *args: Any, **kwargs: Any) -> PreparedImage:
        with lock:
            log.append(Path(source).name)
        return prepare_image(source, *args, **kwargs)

    monkeypatch.setattr(document_loaders, "prepare_image", logged)
    return log


# -- inputs and metadata ------------------------------------------------------------------------


def test_directory_metadata_and_broken_images_are_skipped_with_warnings(
    api: MockAPI, make_model: Make, folder: Path
) -> None:
    api.queue(describe)
    loader = AfarensisImageLoader(folder, llm=make_model())
    with pytest.warns(ImageSkippedWarning) as records:
        documents = loader.load()

    assert sources(documents) == GOOD
    assert skipped(records.list) == BAD
    for document in documents:
        path = Path(document.metadata["source"])
        assert document.metadata == expected_metadata(path)
    by_name = {Path(d.metadata["source"]).name: d for d in documents}
    assert by_name["flower.webp"].page_content == "a WEBP 480x360 image"
    assert by_name["hopper.bmp"].page_content == "a PNG 128x128 image"  # BMP is converted
    assert by_name["hopper.bmp"].metadata["format"] == "BMP"
    assert by_name["hopper.bmp"].metadata["mime_type"] == "image/png"
    assert by_name["hopper.jpg"].metadata | {"source": "-"} == {
        "source": "-",
        "format": "JPEG",
        "source_width": 128,
        "source_height": 128,
        "source_bytes": 6412,
        "mime_type": "image/jpeg",
        "width": 128,
        "height": 128,
        "bytes": 6412,
        "changed": False,  # sent byte for byte
        "detail": "auto",
        "image_tokens": 255,
        "bytes_sent": 6412,
        "model": MODEL,
    }
    assert len(api.requests) == len(GOOD)  # nothing broken reached the API


def test_request_carries_the_question_and_the_data_url_at_the_requested_detail(
    api: MockAPI, make_model: Make, folder: Path
) -> None:
    api.queue(describe)
    path = folder / "hopper.jpg"
    [document] = AfarensisImageLoader(
        path, llm=make_model(), question="What is this?", detail="low"
    ).load()

    expected_url = prepare_image(path, "low").data_url
    assert api.bodies == [
        {
            "model": "gpt-4-vision-preview",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": expected_url, "detail": "low"}},
                    ],
                }
            ],
            "max_tokens": 1024,
        }
    ]
    assert document.metadata == expected_metadata(path, "low")
    assert document.metadata["image_tokens"] == 85


def test_default_question_is_sent(api: MockAPI, make_model: Make, folder: Path) -> None:
    api.queue(describe)
    AfarensisImageLoader(folder / "hopper.png", llm=make_model()).load()
    assert sent_image(api.requests[0]) == (DEFAULT_QUESTION, "PNG 128x128")


def test_glob_with_recursive_stars(
    api: MockAPI, make_model: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "photos" / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(TEST_IMAGES / "hopper.jpg", tmp_path / "photos" / "a.jpg")
    shutil.copy(TEST_IMAGES / "flower.jpg", tmp_path / "photos" / "sub" / "deeper" / "b.jpg")
    shutil.copy(TEST_IMAGES / "hopper.png", tmp_path / "photos" / "sub" / "c.png")
    monkeypatch.chdir(tmp_path)
    api.queue(describe)

    documents = AfarensisImageLoader("photos/**/*.jpg", llm=make_model()).load()
    assert [d.metadata["source"] for d in documents] == ["photos/a.jpg", "photos/sub/deeper/b.jpg"]
    assert [d.page_content for d in documents] == ["a JPEG 128x128 image", "a JPEG 480x360 image"]

    with pytest.warns(NoImagesFoundWarning, match="'photos/\\*.png' matches no file"):
        assert AfarensisImageLoader("photos/*.png", llm=make_model()).load() == []


def test_image_urls_go_to_the_api_untouched(api: MockAPI, make_model: Make, folder: Path) -> None:
    """iter_image_sources gives URLs as they are: the loader sends them for the API to fetch."""
    url = "https://example.com/photos/cat.jpg"
    usage = {"prompt_tokens": 300, "completion_tokens": 3, "total_tokens": 303}
    usage["prompt_tokens_details"] = {"text_tokens": 45, "image_tokens": 255}  # type: ignore[assignment]
    answer = completion("a cat", model=MODEL)
    api.queue({**answer, "usage": usage}, describe)
    loader = AfarensisImageLoader([url, folder / "hopper.png"], llm=make_model(), detail="low")
    first, second = loader.load()
    image = api.bodies[0]["messages"][0]["content"][1]
    assert image == {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    assert first.page_content == "a cat"
    assert first.metadata == {
        "source": url,
        **dict.fromkeys(["format", "source_width", "source_height", "source_bytes"]),
        **dict.fromkeys(["mime_type", "width", "height", "bytes", "changed"]),
        "detail": "low",
        "image_tokens": 255,  # as the API reported it
        "bytes_sent": None,
        "model": MODEL,
    }
    assert list(first.metadata) == list(expected_metadata(folder / "hopper.png"))
    assert second.metadata == expected_metadata(folder / "hopper.png", "low")


async def test_image_urls_go_to_the_api_untouched_async(api: MockAPI, make_model: Make) -> None:
    api.queue(completion("a cat", model=MODEL))
    loader = AfarensisImageLoader("http://example.com/cat.jpg", llm=make_model())
    (document,) = [d async for d in loader.alazy_load()]
    assert document.metadata["source"] == "http://example.com/cat.jpg"
    assert document.metadata["image_tokens"] is None  # not reported by this API answer
    assert (
        api.bodies[0]["messages"][0]["content"][1]["image_url"]["url"]
        == "http://example.com/cat.jpg"
    )


def test_sources_that_name_nothing_warn(
    api: MockAPI, make_model: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AfarensisImageLoader("nope/*.jpg") used to return [] without a word."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "nested" / "sub").mkdir(parents=True)
    shutil.copy(TEST_IMAGES / "hopper.jpg", tmp_path / "nested" / "sub" / "a.jpg")
    (tmp_path / "none.txt").write_text("# nothing listed\n\n")
    loader = AfarensisImageLoader(["nope/*.jpg", "empty", "nested", "@none.txt"], llm=make_model())
    with pytest.warns(NoImagesFoundWarning) as records:
        documents = loader.load()
    assert documents == []
    assert [str(r.message) for r in records] == [
        "'nope/*.jpg' matches no file",
        "'empty' holds no image files (picked by suffix: .png, .jpg, .webp, .gif, .tif, ...)",
        "'nested' holds no image files (picked by suffix: .png, .jpg, .webp, .gif, .tif, ...); "
        "its subdirectories are scanned with recursive=True",
        "'@none.txt' lists no sources",
    ]
    assert [r.message.entry for r in records] == ["nope/*.jpg", "empty", "nested", "@none.txt"]  # type: ignore[union-attr]
    assert api.requests == []


async def test_sources_that_name_nothing_warn_async(make_model: Make) -> None:
    with pytest.warns(NoImagesFoundWarning, match="matches no file"):
        assert await AfarensisImageLoader("nope/*.jpg", llm=make_model()).aload() == []


def test_sources_that_name_something_do_not_warn(
    api: MockAPI, make_model: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nested" / "sub").mkdir(parents=True)
    shutil.copy(TEST_IMAGES / "hopper.jpg", tmp_path / "nested" / "sub" / "a.jpg")
    (tmp_path / "one.txt").write_text("nested/sub/a.jpg\n")
    api.queue(describe)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entries = ["nested/*/*.jpg", "nested", "@one.txt", "https://example.com/a.jpg"]
        assert list(iter_image_sources(entries, recursive=True)) == [
            "nested/sub/a.jpg",
            "nested/sub/a.jpg",
            "nested/sub/a.jpg",
            "https://example.com/a.jpg",
        ]


def test_directory_scan_is_flat_unless_recursive_and_ignores_hidden_and_other_files(
    api: MockAPI, make_model: Make, tmp_path: Path
) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".cache").mkdir()
    for target in ["b.JPG", "sub/a.png", ".hidden.jpg", ".cache/x.jpg"]:
        shutil.copy(TEST_IMAGES / "hopper.jpg", tmp_path / target)
    (tmp_path / "README.md").write_text("not an image")
    api.queue(describe)

    flat = AfarensisImageLoader(tmp_path, llm=make_model()).load()
    deep = AfarensisImageLoader(str(tmp_path), llm=make_model(), recursive=True).load()
    assert [d.metadata["source"] for d in flat] == [str(tmp_path / "b.JPG")]
    assert [d.metadata["source"] for d in deep] == [
        str(tmp_path / p) for p in ["b.JPG", "sub/a.png"]
    ]


def test_explicit_paths_keep_their_order_and_mix_with_directories(
    api: MockAPI, make_model: Make, folder: Path, tmp_path: Path
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(TEST_IMAGES / "flower2.jpg", extra / "z.jpg")
    api.queue(describe)
    paths: list[str | Path] = [folder / "hopper.png", str(folder / "flower.webp"), extra]
    documents = AfarensisImageLoader(paths, llm=make_model()).load()
    assert sources(documents) == ["hopper.png", "flower.webp", "z.jpg"]
    assert documents[2].page_content == "a JPEG 300x225 image"


def test_missing_file_is_skipped_with_a_warning(
    api: MockAPI, make_model: Make, folder: Path
) -> None:
    api.queue(describe)
    loader = AfarensisImageLoader([folder / "nope.jpg", folder / "hopper.jpg"], llm=make_model())
    with pytest.warns(ImageSkippedWarning, match="nope.jpg") as records:
        documents = loader.load()
    assert sources(documents) == ["hopper.jpg"]
    assert skipped(records.list) == {"nope.jpg": "FileNotFoundError"}


def test_a_fifo_named_directly_is_refused_without_blocking(
    api: MockAPI, make_model: Make, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    loader = AfarensisImageLoader([fifo], llm=make_model(), on_error="raise")
    error = raised_beside_fifo(fifo, loader.load)
    assert isinstance(error, InvalidImageError), repr(error)
    assert "not a regular file" in str(error)
    assert api.requests == []


def test_model_falls_back_to_the_configured_name(
    api: MockAPI, make_model: Make, folder: Path
) -> None:
    body = completion("a portrait")
    del body["model"]
    api.queue(httpx2.Response(200, json=body))
    [document] = AfarensisImageLoader(folder / "hopper.jpg", llm=make_model(model="gpt-x")).load()
    assert document.metadata["model"] == "gpt-x"
    assert document.page_content == "a portrait"


def test_constructor_validates_and_defaults_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFARENSIS_API_KEY", KEY)
    loader = AfarensisImageLoader("x.jpg")
    assert isinstance(loader.llm, ChatAfarensis)
    assert (loader.paths, loader.detail, loader.max_concurrency) == (["x.jpg"], "auto", 8)
    assert (loader.on_error, loader.show_progress) == ("warn", None)
    with pytest.raises(ValueError, match="max_concurrency"):
        AfarensisImageLoader("x.jpg", max_concurrency=0)
    with pytest.raises(ValueError, match="on_error"):
        AfarensisImageLoader("x.jpg", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="detail"):
        AfarensisImageLoader("x.jpg", detail="medium")  # type: ignore[arg-type]


# -- errors -------------------------------------------------------------------------------------


def test_on_error_raise_stops_at_the_broken_image(
    api: MockAPI, make_model: Make, folder: Path
) -> None:
    api.queue(describe)
    iterator = AfarensisImageLoader(folder, llm=make_model(), on_error="raise").lazy_load()
    documents: list[Document] = []
    with pytest.raises(InvalidImageError) as caught:
        documents.extend(iterator)
    assert caught.value.code == "animated_gif_not_supported"
    assert f"while loading image {folder / 'iss634.gif'}" in (caught.value.__notes__ or [])
    assert sources(documents) == GOOD  # everything before it came out


def test_on_error_skip_is_silent(api: MockAPI, make_model: Make, folder: Path) -> None:
    api.queue(describe)
    documents = AfarensisImageLoader(folder, llm=make_model(), on_error="skip").load()
    assert sources(documents) == GOOD  # and no warning: the pytest config makes them errors


def test_api_error_on_one_image_warns_and_the_rest_still_come(
    api: MockAPI, make_model: Make, folder: Path
) -> None:
    api.queue(describe, error(400, "invalid_image", "cannot read"), describe)
    loader = AfarensisImageLoader(folder, llm=make_model(), on_error="warn")
    with pytest.warns(ImageSkippedWarning) as records:
        documents = loader.load()
    assert sources(documents) == ["flower.webp", "hopper.jpg", "hopper.png"]
    found = skipped(records.list)
    assert found == {**BAD, "hopper.bmp": "invalid_image"}
    [api_warning] = [r.message for r in records.list if "hopper.bmp" in str(r.message)]
    assert isinstance(api_warning, ImageSkippedWarning)
    assert isinstance(api_warning.error, BadRequestError)


def test_errors_every_image_would_hit_always_raise(
    api: MockAPI, make_model: Make, folder: Path
) -> None:
    api.queue(error(401, "invalid_api_key", "bad key"))
    with pytest.raises(AuthenticationError):
        AfarensisImageLoader(folder, llm=make_model(), on_error="skip").load()
    assert len(api.requests) == 1  # not once per image

    keyless = ChatAfarensis(**api.clients())
    with pytest.raises(MissingAPIKeyError, match="No Afarensis API key"):
        AfarensisImageLoader(folder / "hopper.jpg", llm=keyless).load()


# -- laziness -----------------------------------------------------------------------------------


def test_lazy_load_streams_one_image_at_a_time(
    api: MockAPI, make_model: Make, folder: Path, prepared_log: list[str]
) -> None:
    api.queue(describe)
    loader = AfarensisImageLoader(folder, llm=make_model(), on_error="skip")
    iterator = cast(Generator[Document, None, None], loader.lazy_load())
    assert prepared_log == []  # nothing is read before iteration starts
    first = next(iterator)
    assert sources([first]) == ["flower.webp"]
    assert prepared_log == ["flower.webp"]
    assert len(api.requests) == 1
    second = next(iterator)
    assert sources([second]) == ["hopper.bmp"]
    assert prepared_log == ["flower.webp", "hopper.bmp"]
    iterator.close()


# -- async: bounded concurrency, order ----------------------------------------------------------


class InFlight:
    """An async MockTransport handler that sleeps a little and tracks concurrent requests."""

    def __init__(
        self, fail_on: str | None = None, delay: Callable[[int], float] | None = None
    ) -> None:
        self.now = 0
        self.most = 0
        self.count = 0
        self.finished: list[int] = []
        self.prepared: list[str] | None = None  # a prepared_log, to count images held
        self.most_held = 0
        self.fail_on = fail_on
        # By default a width-dependent delay, so that answers finish out of order.
        self.delay = delay or (lambda width: 0.001 * (width * 7 % 5))

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        assert_valid("CreateChatCompletionRequest", json.loads(request.content))
        self.count += 1
        self.now += 1
        self.most = max(self.most, self.now)
        if self.prepared is not None:  # prepared, and not yet answered
            self.most_held = max(self.most_held, len(self.prepared) - len(self.finished))
        try:
            _, seen = sent_image(request)
            width = int(seen.split()[1].split("x")[0])
            await asyncio.sleep(self.delay(width))
            self.finished.append(width)
            if seen == self.fail_on:
                return error(500, "server_error", "engine crashed")
            return httpx2.Response(200, json=completion(f"a {seen} image", model=MODEL))
        finally:
            self.now -= 1

    def model(self) -> ChatAfarensis:
        client = httpx2.AsyncClient(transport=httpx2.MockTransport(self))
        return ChatAfarensis(api_key=KEY, max_retries=0, http_async_client=client)


def make_images(folder: Path, count: int) -> list[str]:
    folder.mkdir(exist_ok=True)
    names = []
    for i in range(count):
        name = f"img{i:03d}.png"
        Image.new("RGB", (i + 1, 2), (i % 256, 80, 160)).save(folder / name)
        names.append(name)
    return names


async def test_alazy_load_bounds_concurrency_and_memory_and_keeps_input_order(
    tmp_path: Path, prepared_log: list[str]
) -> None:
    names = make_images(tmp_path / "many", 200)
    handler = InFlight()
    handler.prepared = prepared_log
    loader = AfarensisImageLoader(tmp_path / "many", llm=handler.model(), max_concurrency=8)

    documents: list[Document] = []
    async for document in loader.alazy_load():
        # Images are read no further ahead than the window (2 x max_concurrency).
        assert len(prepared_log) - len(documents) <= 16
        documents.append(document)

    assert sources(documents) == names
    assert [d.page_content for d in documents] == [f"a PNG {i + 1}x2 image" for i in range(200)]
    assert handler.count == 200
    assert handler.finished != sorted(handler.finished)  # answers came back out of order
    assert 1 < handler.most <= 8
    assert handler.most_held <= 8  # images are read only once they may be sent


async def test_alazy_load_keeps_max_concurrency_requests_in_flight(tmp_path: Path) -> None:
    make_images(tmp_path / "many", 24)
    handler = InFlight(delay=lambda width: 0.05)  # long enough for the window to fill up
    loader = AfarensisImageLoader(tmp_path / "many", llm=handler.model(), max_concurrency=8)
    documents = await loader.aload()
    assert len(documents) == 24
    assert handler.most == 8


async def test_alazy_load_with_concurrency_one_is_sequential(folder: Path) -> None:
    handler = InFlight()
    loader = AfarensisImageLoader(folder, llm=handler.model(), max_concurrency=1, on_error="skip")
    documents = await loader.aload()
    assert sources(documents) == GOOD
    assert handler.most == 1


async def test_aload_skips_broken_images_and_api_errors_with_warnings(folder: Path) -> None:
    handler = InFlight(fail_on="WEBP 480x360")
    loader = AfarensisImageLoader(folder, llm=handler.model(), max_concurrency=3)
    with pytest.warns(ImageSkippedWarning) as records:
        documents = await loader.aload()
    assert sources(documents) == ["hopper.bmp", "hopper.jpg", "hopper.png"]
    assert [d.metadata for d in documents] == [
        expected_metadata(folder / name) for name in sources(documents)
    ]
    assert skipped(records.list) == {**BAD, "flower.webp": "server_error"}


async def test_alazy_load_raise_cancels_the_rest(folder: Path) -> None:
    handler = InFlight()
    loader = AfarensisImageLoader(folder, llm=handler.model(), max_concurrency=2, on_error="raise")
    documents: list[Document] = []

    async def consume() -> None:
        async for document in loader.alazy_load():
            documents.append(document)

    with pytest.raises(InvalidImageError, match="animated"):
        await consume()
    assert sources(documents) == GOOD
    assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left running


async def test_alazy_load_early_exit_leaves_no_tasks(tmp_path: Path) -> None:
    make_images(tmp_path / "many", 30)
    handler = InFlight()
    loader = AfarensisImageLoader(tmp_path / "many", llm=handler.model(), max_concurrency=4)
    iterator = cast(AsyncGenerator[Document, None], loader.alazy_load())
    async with aclosing(iterator) as documents:
        async for document in documents:
            assert document.metadata["width"] == 1
            break
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert handler.count <= 8  # the window, not all 30


# -- progress -----------------------------------------------------------------------------------


def test_progress_bar_when_asked(
    api: MockAPI, make_model: Make, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.queue(describe)
    paths = [folder / "hopper.jpg", folder / "hopper.png"]
    AfarensisImageLoader(paths, llm=make_model(), show_progress=True).load()
    err = capsys.readouterr().err
    assert err.startswith("\rDescribing images: 1/2 (")
    assert "\rDescribing images: 2/2 (" in err
    assert err.endswith("/s)\n")


def test_no_progress_bar_off_a_terminal(
    api: MockAPI, make_model: Make, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.queue(describe)
    AfarensisImageLoader(folder / "hopper.jpg", llm=make_model()).load()
    assert capsys.readouterr().err == ""


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_tty_only() -> None:
    tty, pipe = FakeTTY(), io.StringIO()
    for stream in (tty, pipe):
        with Progress(3, "Work", stream=stream) as progress:
            progress.advance()
            progress.advance(2)
    assert tty.getvalue().count("\r") == 2
    assert "\rWork: 3/3 (" in tty.getvalue()
    assert tty.getvalue().endswith("\n")
    assert pipe.getvalue() == ""
    with Progress(0, stream=tty) as empty:  # nothing to count: nothing drawn
        assert not empty.enabled
