"""The corpus job's output file on its own: lines that are not records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from langchain_afarensis_vision.corpus._store import ResultStore


def _record(source: Any, key: Any, error: Any = None) -> dict[str, Any]:
    return {"source": source, "key": key, "description": None if error else "ok", "error": error}


def _write(path: Path, *lines: dict[str, Any] | str) -> None:
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (_record("a.png", "k1", {"type": ["InvalidImageError"], "code": None}), "error is not"),
        (_record("a.png", "k1", {"type": {"x": 1}}), "error is not"),
        (_record("a.png", "k1", "a string"), "error is not"),
        (_record(["a.png"], "k1"), "source is not a string"),
        (_record("a.png", 7), "key is not a string"),
        ("[1, 2]", "not a JSON object"),
        ("not json at all", "not JSON"),
    ],
)
def test_a_line_that_is_no_record_is_dropped_with_a_warning(
    tmp_path: Path, bad: dict[str, Any] | str, why: str
) -> None:
    out = tmp_path / "out.jsonl"
    _write(out, _record("b.png", "k2"), bad, _record("c.png", "k3"))
    with pytest.warns(UserWarning, match=f"1 line\\(s\\) are not records.*line 2: {why}"):
        store = ResultStore(out)
    assert not store.has("a.png", "k1")  # not done: its image is done again
    assert store.has("b.png", "k2")
    assert store.read(store.done["k3"])["source"] == "c.png"
    store.close()
    assert [json.loads(line)["source"] for line in out.read_text().splitlines()] == [
        "b.png",
        "c.png",
    ]
    _write(out, bad)
    with pytest.warns(UserWarning, match="is done again"):  # a dry run changes nothing
        ResultStore(out, read_only=True).close()
    assert out.read_text() == (bad if isinstance(bad, str) else json.dumps(bad)) + "\n"
