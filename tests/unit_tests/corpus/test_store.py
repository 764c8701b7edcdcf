"""The corpus job's output file on its own: one writer, offsets, lines that are not records."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from langchain_afarensis_vision.corpus._store import ResultStore
from langchain_afarensis_vision.errors import OutputInUseError


def _record(source: Any, key: Any, error: Any = None) -> dict[str, Any]:
    return {"source": source, "key": key, "description": None if error else "ok", "error": error}


def _write(path: Path, *lines: dict[str, Any] | str) -> None:
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))


def test_a_second_writer_is_refused_until_the_first_closes(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = ResultStore(out)
    first.write(_record("a.png", "k1"))
    with pytest.raises(OutputInUseError, match=r"another run \(process \d+.*another output file"):
        ResultStore(out)  # in the same process too
    dry = ResultStore(out, read_only=True)  # a dry run only reads: never refused
    assert dry.has("a.png", "k1")
    dry.close()
    first.close()
    again = ResultStore(out)
    assert again.has("a.png", "k1")
    again.close()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_the_lock_goes_with_a_killed_process(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    code = (
        "import sys, time\n"
        "from langchain_afarensis_vision.corpus._store import ResultStore\n"
        "store = ResultStore(sys.argv[1])\n"
        "print('open', flush=True)\n"
        "time.sleep(600)\n"
    )
    command = [sys.executable, "-c", code, str(out)]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == b"open\n"
            with pytest.raises(OutputInUseError, match=f"process {holder.pid}"):
                ResultStore(out)
        finally:
            holder.send_signal(signal.SIGKILL)
    ResultStore(out).close()  # no stale lock: nothing to clean up


def test_an_offset_is_where_the_line_went(tmp_path: Path) -> None:
    """Even if something appended to the file after it was opened (not a run: it would be
    refused), the offset returned points to the line written, and a read checks its key."""
    out = tmp_path / "out.jsonl"
    store = ResultStore(out)
    with out.open("a") as other:
        other.write(json.dumps(_record("x.png", "kx")) + "\n")
    offset = store.write(_record("a.png", "k1"))
    assert store.read(offset, "k1")["source"] == "a.png"
    assert store.done["k1"] == offset
    with pytest.raises(RuntimeError, match="is not the record of k2"):
        store.read(offset, "k2")
    store.close()


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
    assert store.read(store.done["k3"], "k3")["source"] == "c.png"
    store.close()
    assert [json.loads(line)["source"] for line in out.read_text().splitlines()] == [
        "b.png",
        "c.png",
    ]
    _write(out, bad)
    with pytest.warns(UserWarning, match="is done again"):  # a dry run changes nothing
        ResultStore(out, read_only=True).close()
    assert out.read_text() == (bad if isinstance(bad, str) else json.dumps(bad)) + "\n"


def test_what_earlier_runs_charged_is_kept_beside_the_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    billed = {**_record("a.png", "k1"), "prompt_tokens": 300, "completion_tokens": 50}
    _write(out, billed)
    store = ResultStore(out)  # no state yet (an older output): what its records say was billed
    assert store.charged == 350
    store.state.save(charged_tokens=900)  # a run charged more (requests that got no answer)
    store.close()
    dry = ResultStore(out, read_only=True)
    assert dry.charged == 900  # a dry run reads it too
    dry.close()
    out.unlink()  # a new output: a new job, whatever an old state says
    store = ResultStore(out)
    assert store.charged == 0
    store.close()
    assert json.loads((tmp_path / "out.jsonl.state").read_text())["charged_tokens"] == 0
