"""The corpus job's inputs and output: sources streamed by name, and the crash-safe JSONL file.

Sources (:func:`iter_sources`) are files, directories (recursive, image files by suffix,
hidden ones skipped), globs, ``http(s)`` URLs, or ``@list.txt`` (one source a line, blank lines
and ``#`` comments ignored), named as everywhere in the package
(:func:`~.document_loaders.iter_image_sources`); they are yielded one at a time.

The output (:class:`ResultStore`) holds one JSON object per line. Each line is written, flushed
and ``fsync``-ed before the next begins, so a crash loses at most the lines being written. On
opening, a torn last line (no newline, or not JSON) is truncated away, and records of retryable
failures are dropped (rewritten atomically) so that they are tried again and every source keeps
exactly one line; so is a whole line that is not such a record (not JSON, or a field of the
wrong type, e.g. an ``error.type`` that is not a string), with a warning naming it. What
remains is the resume index: ``key`` (content + question + detail + model + max tokens) ->
offset of its line, and the ``(source, key)`` pairs already written. A run that writes holds the
lock of :mod:`.corpus._state` from before it reads the file until it closes it, so each output
has one writer; each offset is where that writer's line went (taken once it is written).

``charged`` is what the output's earlier runs charged against a token budget: the state's count
(see :mod:`.corpus._budget`), or, where there is none (an output written before the state was
kept), the tokens its records say were billed. A new output (no file yet) starts from zero.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final

from langchain_afarensis_vision._sources.listing import iter_image_sources
from langchain_afarensis_vision.corpus._state import OutputState

__all__ = [
    "FINAL_ERRORS",
    "ResultStore",
    "error_record",
    "exception_record",
    "is_refusal",
    "iter_sources",
    "job_key",
]

FINAL_ERRORS: Final = frozenset({"InvalidImageError", "InvalidRequestError"})
"""Error types recorded for good: the client refused the image, and would again."""


def is_refusal(error: object) -> bool:
    """Whether a record's ``error`` refuses its image for good (not tried again)."""
    return isinstance(error, dict) and str(error.get("type")) in FINAL_ERRORS


def error_record(kind: str, code: str | None, message: str) -> dict[str, Any]:
    """A record's ``error``: ``{"type", "code", "message"}`` (the corpus job's and Ray's)."""
    return {"type": kind, "code": None if code is None else str(code), "message": message}


def exception_record(error: BaseException) -> dict[str, Any]:
    """The ``error`` of a record for an exception: its class name, ``code`` if any, its text."""
    return error_record(type(error).__name__, getattr(error, "code", None), str(error))


def job_key(content: str, question: str, detail: str, model: str, max_tokens: int) -> str:
    """The resume key: a digest of the image (its SHA-256, or its URL) and the request."""
    text = json.dumps([content, question, detail, model, max_tokens])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def iter_sources(entries: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Every source the entries name, one at a time; directories are walked recursively."""
    return iter_image_sources(entries, recursive=True)


def _is_final(record: dict[str, Any]) -> bool:
    error = record.get("error")
    return error is None or is_refusal(error)


class ResultStore:
    """The ``--out`` JSONL file, opened for appending after the resume index is read.

    Args:
        path: The file (created if missing).
        read_only: Only read what the file holds (a dry run): nothing is created, dropped
            or written, and :meth:`write` is refused.

    Raises:
        OutputInUseError: Another run (not read-only) has the file open.
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.done: dict[str, int] = {}  # key -> offset of a final record
        self.written: set[tuple[str, str]] = set()  # (source, key) with a final record
        self.refused: set[tuple[str, str]] = set()  # those of them the client refused
        self.dropped = 0  # retryable failures and torn lines dropped on opening
        self.charged = 0  # tokens charged by the output's earlier runs
        self.state = OutputState(self.path, read_only=read_only)  # one writer: before reading
        self._file: BinaryIO | None = None
        try:
            self._load()
            if not read_only:
                self._file = open(self.path, "ab")  # noqa: SIM115 - closed by close()
                self.state.save(charged_tokens=self.charged)  # a new output's starts from 0
        except BaseException:
            self.state.close()
            raise
        exists = self._file is not None or self.path.exists()
        self._reader: BinaryIO | None = open(self.path, "rb") if exists else None  # noqa: SIM115

    def has(self, source: str, key: str) -> bool:
        """Whether ``source`` already has a final line for ``key``."""
        return (source, key) in self.written

    def read(self, offset: int, key: str) -> dict[str, Any]:
        """The record of ``key`` written at ``offset`` (a RuntimeError if the line is not it)."""
        assert self._reader is not None, "an offset points into an existing file"
        self._reader.seek(offset)
        record = _record(self._reader.readline())
        if isinstance(record, str) or record["key"] != key:
            msg = (
                f"{self.path}: the line at byte {offset} is not the record of {key} any more: "
                "something else wrote to the file during the run. Run again to go on."
            )
            raise RuntimeError(msg)
        return record

    def write(self, record: dict[str, Any]) -> int:
        """Append ``record`` as one line, flushed and synced; return its offset."""
        if self._file is None:
            msg = f"{self.path} was opened read-only (a dry run writes nothing)"
            raise io.UnsupportedOperation(msg)
        line = json.dumps(record, ensure_ascii=False).encode() + b"\n"
        self._file.write(line)
        self._file.flush()
        offset = self._file.tell() - len(line)  # where it went: appended, wherever the end was
        os.fsync(self._file.fileno())
        if _is_final(record):
            self._index(record, offset)
        return offset

    def close(self) -> None:
        """Close the file, then release the lock."""
        for file in (self._file, self._reader):
            if file is not None:
                file.close()
        self.state.close()

    # -- opening --------------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            return
        stored = self.state.values.get("charged_tokens")
        self.charged = stored if isinstance(stored, int) and stored > 0 else 0
        recorded = 0  # what the records say was billed
        kept_end = 0  # where the kept lines end, if nothing before them is dropped
        rewrite = False
        malformed: list[str] = []
        for number, (line, record) in enumerate(_lines(self.path), 1):
            if isinstance(record, str) and line.endswith(b"\n"):  # a whole line, not the tail
                malformed.append(f"line {number}: {record}")
            if isinstance(record, str) or not _is_final(record):
                self.dropped += 1
                rewrite = rewrite or line.endswith(b"\n")  # a whole line, not the torn tail
                continue
            self._index(record, kept_end)
            kept_end += len(line)
            usage = (record.get("prompt_tokens"), record.get("completion_tokens"))
            recorded += sum(n for n in usage if isinstance(n, int) and n > 0)
        self.charged = max(self.charged, recorded)
        if malformed:
            shown = "; ".join(malformed[:3]) + ("; ..." if len(malformed) > 3 else "")
            what = "is done again" if self.read_only else "is dropped and done again"
            msg = (
                f"{self.path}: {len(malformed)} line(s) are not records of this job ({shown}); "
                f"the image of each {what}"
            )
            warnings.warn(msg, stacklevel=3)
        if self.read_only:
            return  # the index skips what a run would drop; the file stays as it is
        if rewrite:
            self._rewrite()
        elif self.dropped:
            os.truncate(self.path, kept_end)

    def _index(self, record: dict[str, Any], offset: int) -> None:
        self.done.setdefault(record["key"], offset)
        self.written.add((record["source"], record["key"]))
        if record.get("error") is not None:
            self.refused.add((record["source"], record["key"]))

    def _rewrite(self) -> None:
        """Keep only the final records, atomically (a temporary file renamed over the old)."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "wb") as out:
            for line, record in _lines(self.path):
                if not isinstance(record, str) and _is_final(record):
                    out.write(line)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)


def _lines(path: Path) -> Iterator[tuple[bytes, dict[str, Any] | str]]:
    """Each line and its record, or why it is none (torn, not JSON, a field of the wrong type)."""
    with open(path, "rb") as lines:
        for line in lines:
            yield line, _record(line)


def _record(line: bytes) -> dict[str, Any] | str:
    if not line.endswith(b"\n"):
        return "torn"
    try:
        record = json.loads(line)
    except ValueError:
        return "not JSON"
    if not isinstance(record, dict):
        return "not a JSON object"
    for name in ("source", "key"):
        if not isinstance(record.get(name), str):
            return f"{name} is not a string"
    error = record.get("error")
    if error is not None and not (isinstance(error, dict) and isinstance(error.get("type"), str)):
        return "error is not null or an object whose type is a string"
    return record
