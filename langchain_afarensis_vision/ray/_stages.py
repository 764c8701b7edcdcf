"""The two stages of :func:`describe_dataset`: prepare (CPU tasks), then ask (request actors).

**Prepare** (:func:`prepare_batch`, a ``map_batches`` function): each row's image (bytes, a decoded
array from ``read_images``, a ``data:`` URL, or an ``http(s)`` URL the API fetches) gets its resume
key; rows the previous output already holds are dropped; the rest go through
:func:`~..images.prepare_image` once: the image's facts (:data:`~..images.FACTS`) become columns,
and the prepared bytes travel on in ``_data``. **Ask** (:class:`Describe`, a ``map_batches`` class
run as an actor pool): each actor keeps up to ``in_flight`` requests going at once on an event loop
of its own, through one async ``ChatAfarensis`` whose limiter is the cluster's
(:class:`~._budget.ClusterRateLimiter`). A row that fails gets its ``error``; only errors every
request would meet (no key, a wrong key) fail the dataset.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pyarrow as pa
import ray
from PIL import Image
from pydantic import SecretStr

from langchain_afarensis_vision._api.contract import Detail, ErrorCode, is_data_url, is_fetched_url
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import ImageUrl, question_message
from langchain_afarensis_vision.corpus._store import (
    FINAL_ERRORS,
    error_record,
    exception_record,
    job_key,
)
from langchain_afarensis_vision.errors import (
    EVERY_REQUEST_FAILS,
    AfarensisError,
    InvalidRequestError,
)
from langchain_afarensis_vision.images import (
    FACTS,
    PreparedImage,
    prepare_image,
    refused_facts,
    unknown_facts,
)
from langchain_afarensis_vision.ray._budget import ClusterRateLimiter

__all__ = ["ERROR", "Describe", "Request", "Secrets", "done_keys", "image_column", "prepare_batch"]

ERROR: Final = pa.struct([("type", pa.string()), ("code", pa.string()), ("message", pa.string())])
# The facts' Arrow types (the rest are strings).
_NUMBERS: Final = ("source_width", "source_height", "source_bytes", "width", "height", "bytes")
FACT_TYPES: Final = dict.fromkeys((*_NUMBERS, "image_tokens"), pa.int64()) | {"changed": pa.bool_()}


@dataclass(frozen=True)
class Request:
    """What is asked of every image (and so part of every resume key)."""

    question: str
    detail: Detail
    model: str
    max_tokens: int
    first_frame: bool

    def key(self, content: str) -> str:
        return job_key(content, self.question, self.detail, self.model, self.max_tokens)


@dataclass(frozen=True)
class Secrets:
    """The model's settings and key, put in Ray's object store (never in task arguments)."""

    settings: dict[str, Any]
    api_key: SecretStr | None

    def __repr__(self) -> str:
        return "Secrets(...)"


# -- stage 1: prepare ------------------------------------------------------------------------


def image_column(names: list[str]) -> str:
    """The column holding the images among ``names``: ``bytes``, ``image``, ``url``, or the one.

    Read from each batch's own columns (when ``image_column`` is not given): never from the
    dataset's schema, which Ray can only learn by running the pipeline once more.
    """
    for name in ("bytes", "image", "url"):
        if name in names:
            return name
    if len(names) == 1:
        return names[0]
    msg = f"which column holds the images? pass image_column= (the columns are {names})"
    raise ValueError(msg)


_ADDED: Final = frozenset({"sha256", "key", *FACTS, "error", "_data"})
"""The columns :func:`prepare_batch` adds (the request actors see the input's besides)."""


def prepare_batch(
    table: pa.Table, *, column: str | None, request: Request, done: Any, keep_image: bool
) -> pa.Table:
    """Key, skip what is done, and prepare each row's image (a ``map_batches`` function)."""
    column = column or image_column(table.column_names)
    finished = _done_set(done)
    keep: list[bool] = []
    columns: dict[str, list[Any]] = {n: [] for n in ("sha256", "key", *FACTS, "error", "_data")}
    for value in _values(table.column(column)):
        sha256, key, outcome = _prepare_one(value, request)
        keep.append(key not in finished)
        if not keep[-1]:
            continue
        prepared = outcome if isinstance(outcome, PreparedImage) else None
        error = outcome if isinstance(outcome, dict) else None
        if prepared is not None:
            facts = prepared.facts()
        elif error is not None and isinstance(value, bytes):  # refused: what its header says
            facts = refused_facts(value, request.detail)
        else:
            facts = unknown_facts(request.detail)
        row = {"sha256": sha256, "key": key, **facts, "error": error}
        for name, cell in (row | {"_data": prepared.data if prepared else None}).items():
            columns[name].append(cell)
    out = table.filter(pa.array(keep, pa.bool_())) if not all(keep) else table
    if not keep_image and not _is_text(table.schema.field(column).type):
        out = out.drop_columns([column])
    elif column in FACTS:  # kept, beside the fact of the same name (read_binary_files' bytes)
        out = out.rename_columns([f"input_{n}" if n == column else n for n in out.column_names])
    types = FACT_TYPES | {"error": ERROR, "_data": pa.binary()}
    for name, values in columns.items():
        out = out.append_column(name, pa.array(values, types.get(name, pa.string())))
    return out


def _prepare_one(value: Any, request: Request) -> tuple[str | None, str, Any]:
    """``(sha256, key, PreparedImage | error dict | None)`` for one image; None: a URL."""
    if isinstance(value, str) and is_fetched_url(value):
        return None, request.key(value), None
    if isinstance(value, str) and is_data_url(value):
        return _prepared(value, hashlib.sha256(value.encode()).hexdigest(), request)
    if isinstance(value, bytes):
        return _prepared(value, hashlib.sha256(value).hexdigest(), request)
    if isinstance(value, np.ndarray):
        digest = hashlib.sha256(repr((value.shape, value.dtype.str)).encode())
        digest.update(np.ascontiguousarray(value).data)
        return _prepared(value, digest.hexdigest(), request)
    text = repr(value)[:80]
    message = (
        f"expected image bytes, a decoded image array, a data: URL or an http(s) URL; got "
        f"{text}. Read files with ray.data.read_binary_files or read_images."
    )
    refused = error_record("InvalidImageError", ErrorCode.INVALID_IMAGE, message)
    return None, request.key(text), refused


def _prepared(value: Any, sha256: str, request: Request) -> tuple[str, str, Any]:
    key = request.key(sha256)
    try:
        source = Image.fromarray(value) if isinstance(value, np.ndarray) else value
        return sha256, key, prepare_image(source, request.detail, first_frame=request.first_frame)
    except InvalidRequestError as error:  # InvalidImageError, mostly
        return sha256, key, exception_record(error)
    except (ValueError, TypeError) as error:  # an array Pillow cannot take as an image
        return sha256, key, error_record("InvalidImageError", ErrorCode.INVALID_IMAGE, str(error))


def _values(column: pa.ChunkedArray) -> list[Any]:
    kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or _is_text(kind):
        return list(column.to_pylist())
    # Ray's tensor columns (read_images): one array a row
    return [array for chunk in column.chunks for array in chunk.to_numpy()]


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


_DONE_CACHE: dict[str, frozenset[str]] = {}  # per worker process: the done keys, read once


def _done_set(done: Any) -> frozenset[str]:
    if done is None:
        return frozenset()
    name = done.hex()
    if name not in _DONE_CACHE:
        _DONE_CACHE.clear()
        _DONE_CACHE[name] = ray.get(done)
    return _DONE_CACHE[name]


def done_keys(previous: Any) -> frozenset[str]:
    """The keys of a previous output's rows that need no new request (described or refused)."""
    keys: set[str] = set()
    for batch in previous.select_columns(["key", "error"]).iter_batches(batch_format="pyarrow"):
        for key, error in zip(
            batch.column("key").to_pylist(), batch.column("error").to_pylist(), strict=True
        ):
            if error is None or error.get("type") in FINAL_ERRORS:
                keys.add(key)
    return frozenset(keys)


# -- stage 2: ask ----------------------------------------------------------------------------


class Describe:
    """A request actor: up to ``in_flight`` requests at once, on the actor's event loop.

    Ray runs several of its batches at a time (the UDF is async); each batch's rows go at once.
    """

    def __init__(
        self, secrets: Any, budget: Any, request: Request, column: str | None, in_flight: int
    ) -> None:
        given: Secrets = ray.get(secrets[0])
        self.request, self.column = request, column
        self.llm = ChatAfarensis(
            **given.settings,
            api_key=given.api_key,
            max_tokens=request.max_tokens,
            rate_limiter=ClusterRateLimiter(budget),
        )
        self.slots = asyncio.Semaphore(in_flight)

    async def __call__(self, table: pa.Table) -> pa.Table:
        rows = table.to_pylist()
        answers = await asyncio.gather(*(self._one(row) for row in rows))
        out = table.drop_columns(["_data", "error"])
        names = ("description", "prompt_tokens", "completion_tokens", "model", "error")
        types = (pa.string(), pa.int64(), pa.int64(), pa.string(), ERROR)
        for index, (name, kind) in enumerate(zip(names, types, strict=True)):
            out = out.append_column(name, pa.array([a[index] for a in answers], kind))
        return out

    async def _one(self, row: dict[str, Any]) -> tuple[Any, ...]:
        if row["error"] is not None:
            return None, None, None, self.request.model, row["error"]
        if row["_data"] is not None:
            image: PreparedImage | ImageUrl = PreparedImage.from_facts(row["_data"], row)
        else:
            column = self.column or image_column([n for n in row if n not in _ADDED])
            image = ImageUrl(row[column], self.request.detail)  # a URL column is always kept
        async with self.slots:
            try:
                reply = await self.llm.ainvoke([question_message(self.request.question, image)])
            except EVERY_REQUEST_FAILS:
                raise
            except (AfarensisError, OSError) as error:
                return None, None, None, self.request.model, exception_record(error)
        usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        model = reply.response_metadata.get("model_name") or self.request.model
        return reply.text, usage["input_tokens"], usage["output_tokens"], model, None
