"""``errors``: the exception tree, status mapping, response info and the error fields."""

from __future__ import annotations

import dataclasses
import email.utils
import pickle
import re
import time
from typing import Any

import pytest

from langchain_afarensis_vision import errors
from langchain_afarensis_vision._api.contract import ErrorCode
from langchain_afarensis_vision.errors import (
    AfarensisError,
    APIConnectionError,
    APIResponseInfo,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidDocumentError,
    InvalidImageError,
    InvalidRequestError,
    MissingAPIKeyError,
    NotFoundError,
    OutputInUseError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    retry_after_seconds,
    status_error_class,
)

BASES: dict[type[Exception], tuple[type, ...]] = {
    AfarensisError: (Exception,),
    MissingAPIKeyError: (AfarensisError,),
    RequestTooLargeError: (AfarensisError, ValueError),
    OutputInUseError: (AfarensisError,),
    InvalidRequestError: (AfarensisError, ValueError),
    InvalidImageError: (InvalidRequestError,),
    InvalidDocumentError: (InvalidRequestError,),
    APIConnectionError: (AfarensisError,),
    APITimeoutError: (APIConnectionError,),
    APIStatusError: (AfarensisError,),
    BadRequestError: (APIStatusError,),
    AuthenticationError: (APIStatusError,),
    PermissionDeniedError: (APIStatusError,),
    NotFoundError: (APIStatusError,),
    RateLimitError: (APIStatusError,),
    InternalServerError: (APIStatusError,),
}


def exported_exceptions() -> set[type]:
    exported = (getattr(errors, name) for name in errors.__all__)
    return {obj for obj in exported if isinstance(obj, type) and issubclass(obj, BaseException)}


def drawn_tree() -> dict[str, str | None]:
    """Each class drawn in the module docstring's tree, with the class drawn as its parent."""
    doc = errors.__doc__ or ""
    lines = doc.split("The tree::\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    parents: dict[str, str | None] = {}
    path: list[str] = []
    for line in lines:
        match = re.fullmatch(r" {4}(?P<branch>[│├└─ ]*)(?P<name>\w+)\s.*", line)
        assert match, line
        depth = len(match["branch"]) // 4
        del path[depth:]
        parents[match["name"]] = path[-1] if path else None
        path.append(match["name"])
    return parents


# -- the tree ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [pytest.param(cls, id=cls.__name__) for cls in BASES])
def test_bases(cls: type[Exception]) -> None:
    assert cls.__bases__ == BASES[cls]


def test_every_exported_exception_is_in_the_table() -> None:
    assert exported_exceptions() == set(BASES)
    assert errors.__all__ == sorted(errors.__all__)


def test_the_drawn_tree_is_the_real_one() -> None:
    drawn = drawn_tree()
    assert set(drawn) == {cls.__name__ for cls in exported_exceptions()}
    for name, parent in drawn.items():
        base = getattr(errors, name).__bases__[0]
        assert (base.__name__ if parent is not None else None) == parent, name


def test_messages_and_codes() -> None:
    error = AfarensisError("no key")
    assert (str(error), error.message, error.response) == ("no key", "no key", None)
    image = InvalidImageError("too big", code=ErrorCode.IMAGE_TOO_LARGE)
    assert (str(image), image.code, image.response) == ("too big", "image_too_large", None)
    assert InvalidImageError("bad").code == "invalid_image"


def test_a_document_error_names_file_and_page_and_survives_a_worker() -> None:
    error = InvalidDocumentError(
        "report.pdf, page 3: cannot be rendered", source="report.pdf", page=3
    )
    back = pickle.loads(pickle.dumps(error))
    assert (back.source, back.page, back.message) == ("report.pdf", 3, error.message)
    assert isinstance(back, InvalidRequestError)
    assert back.code == "invalid_value"


# -- status_error_class --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(400, BadRequestError, id="400"),
        pytest.param(401, AuthenticationError, id="401"),
        pytest.param(403, PermissionDeniedError, id="403"),
        pytest.param(404, NotFoundError, id="404"),
        pytest.param(429, RateLimitError, id="429"),
        pytest.param(500, InternalServerError, id="500"),
        pytest.param(502, InternalServerError, id="502"),
        pytest.param(503, InternalServerError, id="503"),
        pytest.param(504, InternalServerError, id="504"),
        pytest.param(599, InternalServerError, id="599"),
        pytest.param(402, APIStatusError, id="402"),
        pytest.param(409, APIStatusError, id="409"),
        pytest.param(413, APIStatusError, id="413"),
        pytest.param(422, APIStatusError, id="422"),
        pytest.param(499, APIStatusError, id="499"),
    ],
)
def test_status_error_class(status: int, cls: type[APIStatusError]) -> None:
    assert status_error_class(status) is cls


# -- APIResponseInfo -----------------------------------------------------------------------------


def test_build_drops_secret_headers_and_lowercases_names() -> None:
    headers = {
        "Authorization": "Bearer sk-secret",
        "Cookie": "session=sk-secret",
        "Set-Cookie": "session=sk-secret",
        "X-API-Key": "sk-secret",
        "api-key": "sk-secret",
        "Retry-After": "2",
        "Content-Type": "application/json",
        "x-request-id": "req_1",
    }
    info = APIResponseInfo.build(429, {"error": {}}, headers)
    assert info == APIResponseInfo(
        status=429,
        data={"error": {}},
        headers={"retry-after": "2", "content-type": "application/json", "x-request-id": "req_1"},
    )
    assert "sk-secret" not in repr(info)


def test_response_info_is_frozen_with_empty_headers_by_default() -> None:
    info = APIResponseInfo(status=500, data="oops")
    assert info.headers == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.status = 200  # type: ignore[misc]


# -- APIStatusError fields -----------------------------------------------------------------------


def status_error(
    data: Any, status: int = 400, headers: dict[str, str] | None = None
) -> APIStatusError:
    info = APIResponseInfo.build(status, data, headers or {})
    return status_error_class(status)("Error code: 400", response=info)


def test_fields_from_the_error_body() -> None:
    body = {
        "error": {
            "message": "bad image",
            "type": "invalid_request_error",
            "param": "messages[0].content[1]",
            "code": "invalid_image_format",
        }
    }
    error = status_error(body)
    assert type(error) is BadRequestError
    assert error.message == "Error code: 400"
    assert error.status_code == 400
    assert (error.code, error.type, error.param) == (
        "invalid_image_format",
        "invalid_request_error",
        "messages[0].content[1]",
    )
    assert error.response is not None
    assert error.response.data is body


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("<html>Bad Gateway</html>", id="text"),
        pytest.param(None, id="none"),
        pytest.param(["error"], id="list"),
        pytest.param({"error": "just a string"}, id="error-not-a-dict"),
        pytest.param({"detail": "other shape"}, id="no-error-key"),
        pytest.param({"error": {}}, id="empty-error"),
    ],
)
def test_fields_from_a_body_without_an_error_object(data: Any) -> None:
    error = status_error(data, status=502)
    assert type(error) is InternalServerError
    assert error.status_code == 502
    assert (error.code, error.type, error.param) == (None, None, None)
    assert error.response is not None
    assert error.response.data == data


# -- RateLimitError.retry_after ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        pytest.param({"Retry-After": "1.5"}, 1.5, id="fraction"),
        pytest.param({"retry-after": "30"}, 30.0, id="integer"),
        pytest.param({"retry-after": " 7 "}, 7.0, id="spaces"),
        pytest.param({"retry-after": "0"}, 0.0, id="zero"),
        pytest.param({}, None, id="absent"),
        pytest.param({"retry-after": ""}, None, id="empty"),
        pytest.param({"retry-after": "soon"}, None, id="words"),
        pytest.param({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0, id="past-date"),
        pytest.param({"retry-after": "Wed, 99 Oct 2015 07:28:00 GMT"}, None, id="no-date"),
        pytest.param({"retry-after-ms": "1500", "retry-after": "9"}, 1.5, id="ms-first"),
        pytest.param({"retry-after-ms": "1e12"}, 1e9, id="ms-huge"),
        pytest.param({"retry-after-ms": "inf", "retry-after": "9"}, 9.0, id="ms-inf"),
        pytest.param({"retry-after-ms": "-5"}, None, id="ms-negative"),
        pytest.param({"retry-after": "1e9"}, 1e9, id="huge"),
        pytest.param({"retry-after": "nan"}, None, id="nan"),
        pytest.param({"retry-after": "inf"}, None, id="inf"),
        pytest.param({"retry-after": "1e400"}, None, id="overflows-to-inf"),
        pytest.param({"retry-after": "-1"}, None, id="negative"),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    error = status_error({"error": {"code": "rate_limit_exceeded"}}, 429, headers)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == seconds


def test_retry_after_an_http_date_counts_from_now() -> None:
    """RFC 9110 allows ``Retry-After: <HTTP-date>``: seconds until then, not a 0.5 s backoff."""
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert retry_after_seconds({"Retry-After": when}) == pytest.approx(30, abs=2)
    unzoned = email.utils.formatdate(time.time() + 30)  # "... -0000": UTC
    assert retry_after_seconds({"retry-after": unzoned}) == pytest.approx(30, abs=2)


# -- request ids and client-side refusals ---------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"x-request-id": "req_abc123"}, "req_abc123", id="plain"),
        pytest.param({"X-Request-ID": "req_1"}, "req_1", id="any-case"),
        pytest.param({}, None, id="absent"),
        pytest.param({"x-request-id": ""}, None, id="empty"),
        pytest.param({"x-request-id": "req 1\nInjected: yes"}, None, id="not-printable"),
        pytest.param({"x-request-id": "r" * 129}, None, id="too-long"),
    ],
)
def test_request_id_from_the_answer(headers: dict[str, str], expected: str | None) -> None:
    error = status_error({"error": {"code": "invalid_value"}}, 400, headers)
    assert error.request_id == expected
    assert error.response is not None
    assert error.response.request_id == expected
    assert (f"(request id {expected})" in error.message) is (expected is not None)
    assert str(error) == error.message


def test_request_id_never_shows_the_key() -> None:
    info = APIResponseInfo.build(400, {}, {"x-request-id": "sk-secret-key"}, "sk-secret-key")
    error = status_error_class(400)("Error code: 400", response=info)
    assert "sk-secret-key" not in error.message
    assert error.request_id is None  # masked to "[API key]", which has a space: not an id


def test_errors_without_an_answer_have_no_request_id() -> None:
    assert AfarensisError("no key").request_id is None
    assert APIConnectionError("cut", request_id="req_9").message == "cut (request id req_9)"


def test_invalid_request_error() -> None:
    error = InvalidRequestError("bad field")
    assert error.code is ErrorCode.INVALID_VALUE
    assert isinstance(error, ValueError)
    assert isinstance(InvalidImageError("x"), InvalidRequestError)
    with pytest.raises(InvalidRequestError, match="detail must be one of low, high, auto"):
        errors.checked_detail("medium")
    assert errors.checked_detail("low") == "low"
