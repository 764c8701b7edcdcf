"""describe_image: its schema, sync and async runs, artifacts and readable errors."""

from __future__ import annotations

import base64
import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image
from pydantic import ValidationError

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import DEFAULT_QUESTION
from langchain_afarensis_vision.errors import InvalidRequestError
from langchain_afarensis_vision.images import UnpreparedImageWarning, prepare_image
from langchain_afarensis_vision.tools import AfarensisDescribeImageTool
from tests._mock_api import MockAPI, completion, error
from tests.hostile_images import tiny_huge_webp

SECRET = "sk-test-secret-key-0123456789"
ANSWER = "A red bar chart with three bars."
URL = "https://example.com/photos/cat.jpg?size=large"


def png(size: tuple[int, int] = (64, 48), colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "chart.png").write_bytes(png())
    (folder / "big.png").write_bytes(png((1600, 1200), "blue"))
    (folder / "notes.png").write_text("not an image at all\n")
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green", "blue")]
    frames[0].save(folder / "spin.gif", save_all=True, append_images=frames[1:], duration=50)
    (tmp_path / "secret.png").write_bytes(png())
    return folder


@pytest.fixture
def make_tool(
    api: MockAPI, make_model: Callable[..., ChatAfarensis], images: Path
) -> Callable[..., AfarensisDescribeImageTool]:
    def make(**kwargs: Any) -> AfarensisDescribeImageTool:
        llm = kwargs.pop("llm", None) or make_model()
        return AfarensisDescribeImageTool(llm=llm, allowed_dirs=[images], **kwargs)

    return make


def call(args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": "describe_image", "args": args}


def image_part(api: MockAPI, index: int = 0) -> dict[str, Any]:
    (message,) = api.bodies[index]["messages"]
    assert message["role"] == "user"
    text, image = message["content"]
    assert text["type"] == "text"
    return image["image_url"]  # type: ignore[no-any-return]


# -- schema -----------------------------------------------------------------------------------


def test_schema(make_tool: Callable[..., AfarensisDescribeImageTool]) -> None:
    tool = make_tool()
    assert tool.name == "describe_image"
    assert tool.handle_tool_error is True
    function = convert_to_openai_tool(tool)["function"]
    assert function["name"] == "describe_image"
    assert "image" in function["description"]
    params = function["parameters"]
    assert params["required"] == ["image"]
    assert set(params["properties"]) == {"image", "question", "detail"}
    assert params["properties"]["question"]["default"] == DEFAULT_QUESTION
    assert "data: URL" in params["properties"]["image"]["description"]
    detail = params["properties"]["detail"]
    assert {"enum": ["low", "high", "auto"], "type": "string"} in detail["anyOf"]


# -- runs -------------------------------------------------------------------------------------


def test_sync_run_sends_the_prepared_image(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool], images: Path
) -> None:
    api.queue(completion(ANSWER))
    args = {"image": "big.png", "question": "What colour is it?", "detail": "low"}
    assert make_tool().invoke(args) == ANSWER
    (message,) = api.bodies[0]["messages"]
    assert message["content"][0] == {"type": "text", "text": "What colour is it?"}
    part = image_part(api)
    assert part["detail"] == "low"
    prepared = prepare_image((images / "big.png").read_bytes(), "low")
    assert part["url"] == prepared.data_url
    assert prepared.size == (512, 384)  # resized before it was sent
    assert api.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_detail_defaults_to_the_model(
    api: MockAPI,
    make_tool: Callable[..., AfarensisDescribeImageTool],
    make_model: Callable[..., ChatAfarensis],
) -> None:
    api.queue(completion(ANSWER))
    tool = make_tool(llm=make_model(image_detail="high"))
    assert tool.invoke({"image": "chart.png"}) == ANSWER
    assert image_part(api)["detail"] == "high"
    assert api.bodies[0]["messages"][0]["content"][0]["text"] == DEFAULT_QUESTION


async def test_async_run(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    api.queue(completion(ANSWER))
    assert await make_tool().ainvoke({"image": "chart.png", "detail": "auto"}) == ANSWER
    part = image_part(api)
    assert part["detail"] == "auto"
    assert part["url"] == prepare_image(png(), "auto").data_url


def test_url_passes_through_untouched(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    api.queue(completion(ANSWER))
    assert make_tool().invoke({"image": URL, "detail": "high"}) == ANSWER
    assert image_part(api) == {"url": URL, "detail": "high"}


def test_data_url_is_prepared(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    api.queue(completion(ANSWER))
    data_url = "data:image/png;base64," + base64.b64encode(png()).decode()
    assert make_tool().invoke({"image": data_url}) == ANSWER
    assert image_part(api)["url"] == data_url  # a small PNG goes out byte for byte


def test_downloaded_url_is_sent_inline(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    fetched: list[httpx2.Request] = []

    def web(request: httpx2.Request) -> httpx2.Response:
        fetched.append(request)
        return httpx2.Response(200, content=png())

    def dns(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    api.queue(completion(ANSWER))
    client = httpx2.Client(transport=httpx2.MockTransport(web))
    tool = make_tool(
        download_urls=True,
        http_client=client,
        getaddrinfo=dns,
        response_format="content_and_artifact",
    )
    message = tool.invoke(call({"image": URL}))
    assert image_part(api)["url"] == prepare_image(png(), "auto").data_url
    assert fetched[0].url.host == "93.184.216.34"
    assert message.artifact["source"] == URL
    assert message.artifact["bytes"] == len(png())


# -- artifacts --------------------------------------------------------------------------------


def test_tool_call_gives_a_tool_message_with_the_artifact(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool], images: Path
) -> None:
    api.queue(completion(ANSWER))
    tool = make_tool(response_format="content_and_artifact")
    message = tool.invoke(call({"image": "big.png", "detail": "high"}, "call_42"))
    assert isinstance(message, ToolMessage)
    assert (message.content, message.tool_call_id, message.status) == (ANSWER, "call_42", "success")
    prepared = prepare_image((images / "big.png").read_bytes(), "high")
    assert message.artifact == {
        "source": str((images / "big.png").resolve()),
        "format": "PNG",
        "source_width": 1600,
        "source_height": 1200,
        "source_bytes": len((images / "big.png").read_bytes()),
        "mime_type": prepared.mime_type,
        "width": 1024,
        "height": 768,
        "bytes": len(prepared.data),
        "changed": True,
        "detail": "high",
        "image_tokens": 765,
    }
    assert "base64" not in repr(message.artifact)


async def test_url_artifact_knows_only_the_upper_bound(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    api.queue(completion(ANSWER), completion(ANSWER))
    tool = make_tool(response_format="content_and_artifact")
    high = await tool.ainvoke(call({"image": URL}))
    low = await tool.ainvoke(call({"image": URL, "detail": "low"}))
    assert high.artifact == {
        "source": URL,
        **dict.fromkeys(["format", "source_width", "source_height", "source_bytes"]),
        **dict.fromkeys(["mime_type", "width", "height", "bytes", "changed"]),
        "detail": "auto",
        "image_tokens": 1445,
    }
    assert low.artifact["image_tokens"] == 85


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_tiny_data_url_declaring_a_huge_image_is_not_decoded(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    """A 71-character data URL of a 10000 x 10000 WEBP once cost 1.6 GB here: now nothing."""
    api.queue(completion(ANSWER))
    data_url = "data:image/webp;base64," + base64.b64encode(tiny_huge_webp()).decode()
    assert len(data_url) <= 80
    with pytest.warns(UnpreparedImageWarning, match="10000x10000 sent as it is"):
        assert make_tool().invoke({"image": data_url}) == ANSWER
    assert image_part(api)["url"] == data_url  # untouched: the API resizes it itself


def test_data_url_artifact_holds_no_data(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    api.queue(completion(ANSWER))
    data_url = "data:image/png;base64," + base64.b64encode(png()).decode()
    tool = make_tool(response_format="content_and_artifact")
    artifact = tool.invoke(call({"image": data_url})).artifact
    assert artifact["source"] == "data: URL"
    assert (artifact["width"], artifact["height"], artifact["mime_type"]) == (64, 48, "image/png")


def test_plain_invoke_with_content_and_artifact_returns_the_answer(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    api.queue(completion(ANSWER))
    assert (
        make_tool(response_format="content_and_artifact").invoke({"image": "chart.png"}) == ANSWER
    )


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("../secret.png", "leads outside the allowed directories"),
        ("../../../../etc/passwd", "leads outside the allowed directories"),
        ("/etc/passwd", "outside the allowed directories"),
        ("file:///etc/passwd", "file: URLs are not accepted"),
        ("javascript:alert(1)", "javascript: URLs are not accepted"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is not public"),
        ("http://2130706433/a.png", "127.0.0.1 is not public"),
        ("http://localhost:8080/a.png", "is not public"),
        ("\\\\server\\share\\a.png", "UNC"),
        ("~/.ssh/id_rsa", "'~' is not expanded"),
        ("missing.png", "there is no file 'missing.png'"),
        ("chart.png\x00", "NUL byte"),
    ],
)
def test_refusals_are_readable_and_nothing_is_sent(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool], image: str, reason: str
) -> None:
    result = make_tool().invoke({"image": image})
    assert result.startswith("describe_image refused the image: ")
    assert reason in result
    assert api.requests == []


def test_the_readme_example_names_resolve(
    api: MockAPI,
    make_model: Callable[..., ChatAfarensis],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """allowed_dirs=["./charts"]: 'flower.jpg' and 'charts/flower.jpg' both name the file."""
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "flower.jpg").write_bytes(png())
    (tmp_path / "charts" / "notes.txt").write_text("not listed: not an image")
    monkeypatch.chdir(tmp_path)
    api.queue(completion(ANSWER))
    tool = AfarensisDescribeImageTool(llm=make_model(), allowed_dirs=["./charts"])
    assert AfarensisDescribeImageTool(llm=make_model(), allowed_dirs="./charts").allowed_dirs == [
        Path("charts")
    ]
    assert tool.invoke({"image": "charts/flower.jpg"}) == ANSWER
    assert tool.invoke({"image": "flower.jpg"}) == ANSWER
    refusal = tool.invoke({"image": "images/flower.jpg"})
    assert refusal == (
        "describe_image refused the image: there is no file 'images/flower.jpg' in the allowed "
        "directories. Give a file name relative to an allowed directory: 'charts' "
        "(holds 'flower.jpg')."
    )
    assert len(api.requests) == 2


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/a.png", "http://localhost/a.png"])
def test_local_urls_are_refused_saying_why_and_how_to_allow_them(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool], url: str
) -> None:
    refusal = make_tool().invoke({"image": url})
    assert "the address 127.0.0.1" in refusal
    assert "is not public" in refusal
    assert "the API fetches image URLs itself and cannot reach it" in refusal
    assert "allow_private_urls" in refusal
    assert api.requests == []
    api.queue(completion(ANSWER))
    assert make_tool(allow_private_urls=["127.0.0.1"]).invoke({"image": url}) == ANSWER
    assert image_part(api)["url"] == url  # passed to the API untouched, not fetched here


def test_arguments_that_do_not_fit_come_back_as_text(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    """An LLM may say detail='medium': the agent hears what is accepted, the loop goes on."""
    tool = make_tool()
    assert tool.invoke({"image": "chart.png", "detail": "medium"}) == (
        "describe_image refused the arguments: detail: Input should be 'low', 'high' or 'auto'"
    )
    message = tool.invoke(call({"question": "x" * 10_000}))
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.content == "describe_image refused the arguments: image: Field required"
    assert api.requests == []
    with pytest.raises(ValidationError):
        make_tool(handle_validation_error=False).invoke({"image": "chart.png", "detail": "x"})


LONG = 200_000


@pytest.mark.parametrize(
    "image",
    [
        pytest.param("a" * LONG, id="name-too-long-to-resolve"),
        pytest.param("./" * (LONG // 2) + "missing.png", id="missing"),
        pytest.param("../" + "a" * LONG, id="dotdot"),
        pytest.param("/" + "a" * LONG, id="absolute-outside"),
        pytest.param("x" * LONG + ":a.png", id="scheme"),
        pytest.param("https://" + "a" * LONG + ".example/x.png", id="url-too-long"),
        pytest.param("https://" + ".".join(["a" * 63] * 30) + "/x.png", id="url-long-host"),
        pytest.param("https://images.example/" + "a" * LONG, id="url-path"),
    ],
)
def test_a_refusal_echoes_at_most_the_start_of_a_long_name(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool], image: str
) -> None:
    """A 200 KB name makes a short refusal: the first 100 characters, '...' and the length
    (the longest host httpx2 parses, 1,919 characters, is shown as briefly)."""

    def private(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", port))]

    result = make_tool(download_urls=True, getaddrinfo=private).invoke({"image": image})
    assert result.startswith("describe_image refused the image: "), result[:300]
    assert len(result) < 400, (len(result), result[:300])
    assert api.requests == []


def test_no_allowed_dirs_says_so(api: MockAPI, make_model: Callable[..., ChatAfarensis]) -> None:
    tool = AfarensisDescribeImageTool(llm=make_model())
    result = tool.invoke({"image": "chart.png"})
    assert result == (
        "describe_image refused the image: "
        "local files are disabled: this tool was given no allowed directories"
    )
    assert api.requests == []


async def test_async_refusal_gives_an_error_tool_message(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    tool = make_tool(response_format="content_and_artifact")
    message = await tool.ainvoke(call({"image": "../../etc/passwd"}))
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert str(message.content).startswith("describe_image refused the image: ")
    assert message.artifact is None
    assert api.requests == []


def test_refusal_raises_when_errors_are_not_handled(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    with pytest.raises(ToolException, match="refused the image"):
        make_tool(handle_tool_error=False).invoke({"image": "/etc/passwd"})
    assert api.requests == []


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("spin.gif", "describe_image cannot use this image (animated_gif_not_supported): "),
        ("notes.png", "describe_image cannot use this image (invalid_image_format): "),
        ("data:image/png;base64,!!!", "describe_image cannot use this image (invalid_image): "),
    ],
)
def test_image_problems_are_readable(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool], image: str, expected: str
) -> None:
    assert make_tool().invoke({"image": image}).startswith(expected)
    assert api.requests == []


# -- API errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            error(400, "image_url_unreachable", "Cannot fetch the image URL."),
            "image_url_unreachable",
        ),
        (error(401, "invalid_api_key", f"Incorrect API key: {SECRET}."), "key: [API key]."),
        (error(429, "rate_limit_exceeded", "Slow down."), "rate_limit_exceeded"),
        (httpx2.ConnectError("connection refused"), "Connection error"),
    ],
)
async def test_api_errors_are_readable(
    api: MockAPI,
    make_tool: Callable[..., AfarensisDescribeImageTool],
    answer: Any,
    expected: str,
) -> None:
    api.queue(answer)
    result = await make_tool().ainvoke({"image": URL})
    assert result.startswith("describe_image failed: the vision API call failed: ")
    assert expected in result
    assert SECRET not in result


def test_an_api_error_tells_the_agent_its_request_id(
    api: MockAPI, make_tool: Callable[..., AfarensisDescribeImageTool]
) -> None:
    api.queue(error(400, "image_url_unreachable", "Cannot fetch.", {"x-request-id": "req_77"}))
    result = make_tool().invoke({"image": URL})
    assert result.endswith("image_url_unreachable: Cannot fetch. (request id req_77)")


def test_a_request_refused_before_sending_is_not_called_an_api_failure(
    api: MockAPI,
    make_tool: Callable[..., AfarensisDescribeImageTool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InvalidRequestError("not sendable")

    monkeypatch.setattr("langchain_afarensis_vision.tools.prepare_image", refuse)
    result = make_tool().invoke({"image": "chart.png"})
    assert result == "describe_image cannot send this request: not sendable"
    assert api.requests == []


def test_api_error_without_a_key_is_readable(images: Path) -> None:
    tool = AfarensisDescribeImageTool(llm=ChatAfarensis(), allowed_dirs=[images])
    result = tool.invoke({"image": "chart.png"})
    assert result.startswith("describe_image failed: the vision API call failed: No Afarensis")
