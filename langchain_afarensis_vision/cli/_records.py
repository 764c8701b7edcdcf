"""The CLI's record of one image: the facts ``--json`` prints, field by field.

One flat dict per image, the same keys for ``describe``, ``demo`` and ``tokens`` (``tokens``
has no ``answer``, ``model`` or ``usage``); a value that is not known is ``null``::

    image          the file or URL as named
    format ... image_tokens   the image's facts (:data:`~.images.FACTS`, PreparedImage.facts());
                   for a refused file what its header says, for a URL only detail
    answer         the model's answer (describe, demo)
    model          the model that answered
    usage          {"input_tokens", "output_tokens", "total_tokens"} the API billed
    error          null, or {"type", "code", "status", "message", "request_id"}
    picture        (tokens --show only) the PNG written of what the model sees, or null
    tiles          (tokens --show only) the token arithmetic in words (explain_image_tokens)

``error.type`` is the API's (``invalid_request_error``, ``authentication_error``,
``rate_limit_exceeded``, ``server_error``; an image refused before sending has the type and
code the API would give it), or ``connection_error``, ``timeout`` or ``file_error`` when no
answer came, or ``url_not_fetched`` (``tokens`` does not download URLs), or the class name
of another client error; ``status`` is the HTTP status, or null when there was none. When a
request fails as every request would (a wrong key, no such model), the images after it are not
sent: each still has its record, with that error's type and code and a message that says so.
"""

from __future__ import annotations

import re
from typing import Any, Final

from langchain_core.messages import AIMessage

from langchain_afarensis_vision._api.contract import (
    API_KEY_ENV,
    BASE_URL_ENV,
    Detail,
    ErrorCode,
    ErrorType,
    is_fetched_url,
)
from langchain_afarensis_vision._sources.read import read_source
from langchain_afarensis_vision.errors import (
    AfarensisError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
)
from langchain_afarensis_vision.images import (
    PreparedImage,
    prepare_image,
    refused_facts,
    unknown_facts,
)

Record = dict[str, Any]
FILE_ERROR: Final = "file_error"
NOT_OFFLINE: Final = "url_not_fetched"

_HINTS: Final[dict[str, str]] = {
    ErrorCode.ANIMATED_GIF_NOT_SUPPORTED: "--first-frame sends its first frame",
}
"""What the CLI adds to a refusal: its own option, where the library's message names its own."""
_LIBRARY_HINT: Final = re.compile(r"\s*\(first_frame=True[^)]*\)")


def prepared_record(
    source: str, detail: Detail, first_frame: bool
) -> tuple[PreparedImage | None, Record]:
    """Prepare a file as it would be sent, and its record (with ``error`` if it cannot be)."""
    record: Record = {"image": source, **unknown_facts(detail), "error": None}
    if is_fetched_url(source):
        return None, record
    try:
        prepared = prepare_image(source, detail, first_frame=first_frame)
    except InvalidRequestError as refused:  # the image (or how it is named) is refused
        message = _LIBRARY_HINT.sub("", refused.message)  # the CLI gives its own (_HINTS)
        record["error"] = _error(ErrorType.INVALID_REQUEST, refused.code, None, message)
        record.update(_refused_facts(source, detail))
        return None, record
    except OSError as unreadable:
        message = unreadable.strerror or str(unreadable)
        record["error"] = _error(FILE_ERROR, None, None, f"{message}: {source}")
        return None, record
    record.update(prepared.facts())
    return prepared, record


def _refused_facts(source: str, detail: Detail) -> Record:
    """The facts known of a refused file (none if it cannot even be read)."""
    try:
        return refused_facts(read_source(source), detail)
    except (OSError, InvalidRequestError):
        return {}


def not_offline(record: Record) -> None:
    """Mark a URL that an offline command cannot measure (only the API downloads it)."""
    message = "a URL is downloaded by the API: only the API learns its size and cost"
    record["error"] = _error(NOT_OFFLINE, None, None, message)


def not_sent(record: Record, stopped: Record) -> Record:
    """Mark an image left unsent once ``stopped`` failed as every request would (the key...).

    It gets ``stopped``'s error type and code, no status or request id (no request was made),
    unless it has its own refusal already; returns ``record``.
    """
    record.update(answer=None, model=None, usage=None)
    if record["error"] is None:
        cause = stopped["error"]
        message = f"not sent: every request would fail alike ({cause['message']})"
        record["error"] = _error(cause["type"], cause["code"], None, message)
    return record


def answered(record: Record, reply: AIMessage, model: str) -> None:
    """Add the answer, the model that gave it and the usage the API billed."""
    usage = reply.usage_metadata
    record.update(
        answer=reply.text,
        model=reply.response_metadata.get("model_name") or model,
        usage=None
        if usage is None
        else {key: usage[key] for key in ("input_tokens", "output_tokens", "total_tokens")},
    )


def failed(record: Record, error: AfarensisError, base_url: str | None) -> None:
    """Record a request that failed; ``base_url`` (the API's) is named when none was reached."""
    record.update(answer=None, model=None, usage=None)
    if isinstance(error, APIStatusError):
        message = f"{error.message}{_status_hint(error, base_url)}"
        fields = _error(error.type, error.code, error.status_code, message)
        fields["request_id"] = error.request_id
    elif isinstance(error, APIConnectionError):
        kind = "timeout" if isinstance(error, APITimeoutError) else "connection_error"
        named = base_url is None or base_url in error.message  # the library's names it
        where = "" if named else f"cannot reach {base_url} (set {BASE_URL_ENV} to use another): "
        fields = _error(kind, None, None, f"{where}{error.message}")
    else:
        fields = _error(type(error).__name__, None, None, error.message)
    record["error"] = fields


def _status_hint(error: APIStatusError, base_url: str | None) -> str:
    """Where to look: the key, the base URL, or ``--model`` (nothing on the local server)."""
    if base_url is None:
        return ""
    if isinstance(error, AuthenticationError):
        return f" (check {API_KEY_ENV})"
    if isinstance(error, NotFoundError) and error.code == ErrorCode.MODEL_NOT_FOUND:
        return " (--model names another)"
    if isinstance(error, NotFoundError):
        return f" (check {BASE_URL_ENV}={base_url}: the API's base URL ends in /v1)"
    return ""


def _error(kind: str | None, code: str | None, status: int | None, message: str) -> Record:
    return {
        "type": None if kind is None else str(kind),
        "code": None if code is None else str(code),
        "status": status,
        "message": message,
        "request_id": None,
    }


def error_text(record: Record) -> str:
    """An error for a person: ``(code) message``, with the CLI's hint for that code."""
    error = record["error"]
    label = error["code"] or error["type"]
    text = f"({label}) {error['message']}" if label else error["message"]
    hint = _HINTS.get(error["code"] or "")
    return f"{text}; {hint}" if hint else text
