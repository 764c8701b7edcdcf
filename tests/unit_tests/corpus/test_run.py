"""The corpus job offline: sources streamed by name, the crash-safe JSONL store, the summary,
and the CLI's usage errors."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from langchain_afarensis_vision import cli, describe_images
from langchain_afarensis_vision.corpus._store import ResultStore, iter_sources, job_key
from langchain_afarensis_vision.corpus._summary import CorpusSummary, estimate_seconds
from langchain_afarensis_vision.document_loaders import NoImagesFoundWarning


def _record(source: str, key: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"source": source, "key": key, "description": None if error else "ok", "error": error}


def _write(path: Path, *records: dict[str, Any], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_sources_files_folders_globs_urls_and_lists(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG", "notes.txt", ".hidden.png", "sub/c.webp", ".git/d.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# a comment\n\nhttps://example.com/x.png\n{tmp_path / 'notes.txt'}\n")
    sources = iter_sources([str(tmp_path), f"{tmp_path}/**/*.webp", f"@{listing}", "missing.png"])
    names = [s.removeprefix(f"{tmp_path}/") for s in sources]
    assert names == [
        "a.JPG",
        "b.png",
        "sub/c.webp",
        "sub/c.webp",
        "https://example.com/x.png",
        "notes.txt",
        "missing.png",
    ]


def test_a_corpus_run_on_sources_that_name_nothing_warns_once(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.warns(NoImagesFoundWarning, match="'nope/\\*.jpg' matches no file") as records:
        summary = describe_images(["nope/*.jpg"], out=out, dry_run=True, show_progress=True)
    assert len(records) == 1  # the bar's count does not say it again
    assert summary.sources == 0


def test_the_key_covers_content_question_detail_model_and_max_tokens() -> None:
    base = ("sha", "What?", "auto", "gpt-4-vision-preview", 300)
    keys = {job_key(*base)}
    for index, other in enumerate(("sha2", "Why?", "low", "other-model", 301)):
        changed = list(base)
        changed[index] = other
        keys.add(job_key(*changed))  # type: ignore[arg-type]
    assert len(keys) == 6


def test_a_torn_last_line_is_truncated_away(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    _write(out, _record("a.png", "k1"), tail='{"source": "b.png", "ke')
    store = ResultStore(out)
    assert store.has("a.png", "k1")
    assert store.dropped == 1
    store.write(_record("b.png", "k2"))
    store.close()
    lines = out.read_text().splitlines()
    assert [json.loads(line)["source"] for line in lines] == ["a.png", "b.png"]


def test_retryable_failures_are_dropped_and_refusals_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    refused = {"type": "InvalidImageError", "code": "invalid_image", "message": "broken"}
    failed = {"type": "APIConnectionError", "code": None, "message": "refused"}
    _write(out, _record("a", "k1", failed), _record("b", "k2", refused), _record("c", "k3"))
    store = ResultStore(out)
    assert not store.has("a", "k1")
    assert store.has("b", "k2")
    assert store.refused == {("b", "k2")}
    assert store.has("c", "k3")
    assert store.read(store.done["k3"], "k3")["source"] == "c"  # offsets point into the new file
    store.close()
    assert [json.loads(line)["source"] for line in out.read_text().splitlines()] == ["b", "c"]


def test_writes_are_indexed_only_when_final(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "out.jsonl")
    failed = {"type": "RateLimitError", "code": "rate_limit_exceeded", "message": "429"}
    store.write(_record("a", "k1", failed))
    offset = store.write(_record("b", "k2"))
    assert "k1" not in store.done
    assert store.done["k2"] == offset
    assert store.read(offset, "k2")["description"] == "ok"
    store.close()


def test_summary_line_exit_code_and_estimate() -> None:
    done = CorpusSummary(sources=3, described=3, sent=2, duplicates=1)
    assert done.exit_code == 0
    assert "3 described (2 sent, 1 duplicates)" in done.line()
    assert CorpusSummary(sources=3, failed=1).exit_code == 1
    assert CorpusSummary(sources=3, refused=1).exit_code == 1
    assert CorpusSummary(sources=3, stopped="budget").exit_code == 1
    assert CorpusSummary(sources=3, skipped=3, refused_earlier=1).exit_code == 1
    plan = CorpusSummary(sources=10, skipped=2, max_billable=30_000, dry_run=True)
    assert estimate_seconds(plan, rpm=None, tpm=None) is None
    # A sliding minute: three minutes' worth go at 0 s, 60 s and 120 s.
    assert estimate_seconds(plan, rpm=8, tpm=10_000) == pytest.approx(120.0)  # tokens bind
    assert estimate_seconds(plan, rpm=2, tpm=None) == pytest.approx(180.0)  # requests bind
    assert estimate_seconds(plan, rpm=8, tpm=29_999) == pytest.approx(60.0)  # just over one
    assert estimate_seconds(plan, rpm=8, tpm=30_000) == pytest.approx(0.0)  # one minute's worth
    plan.estimated_seconds = 120.0
    assert "8 to send" in plan.line()
    assert "rate limit time: 2m00s" in plan.line()


@pytest.mark.parametrize(
    "args",
    [
        ["caption", "x.png"],  # no --out
        ["caption", "x.png", "--out", "o.jsonl", "--concurrency", "0"],
        ["caption", "x.png", "--out", "o.jsonl", "--detail", "medium"],
        ["caption", "x.png", "--out", "o.jsonl", "--budget-tokens", "-5"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2


def test_an_unreadable_list_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    args = ["caption", f"@{tmp_path / 'missing.txt'}", "--out", str(out), "--dry-run"]
    assert cli.main(args) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_dry_run_counts_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests._support import TEST_IMAGES

    out = tmp_path / "out.jsonl"
    args = ["caption", str(TEST_IMAGES), "--out", str(out), "--dry-run", "--tpm", "6600"]
    assert cli.main([*args, "--detail", "low"]) == 1  # one image would be refused
    line = capsys.readouterr().out
    assert "Dry run: 12 images" in line
    assert "1 refused, 0 failed; 11 to send: 935 image tokens" in line  # 11 x 85 at low


def test_a_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from langchain_afarensis_vision.cli._commands import sample_images

    hopper = str(Path(sample_images()) / "hopper.jpg")
    out = tmp_path / "new" / "out.jsonl"
    assert cli.main(["caption", hopper, "--out", str(out), "--dry-run"]) == 0
    assert "1 to send" in capsys.readouterr().out
    assert not out.parent.exists()  # no file, no folder (it was a 0-byte file, or exit 2)
    out = tmp_path / "out.jsonl"
    failed = {"type": "APIConnectionError", "code": None, "message": "refused"}
    _write(out, _record(hopper, "k1", failed), tail='{"source": "torn')  # a run would drop both
    before = out.read_bytes()
    assert cli.main(["caption", hopper, "--out", str(out), "--dry-run"]) == 0
    assert out.read_bytes() == before
    store = ResultStore(out, read_only=True)
    with pytest.raises(OSError, match="read-only"):
        store.write(_record(hopper, "k2"))
    store.close()


def test_on_progress_sees_each_image_and_the_running_summary(tmp_path: Path) -> None:
    from langchain_afarensis_vision import ChatAfarensis, describe_images
    from tests._support import TEST_IMAGES

    seen: list[tuple[int, int, float]] = []

    def progress(summary: CorpusSummary) -> None:
        seen.append((summary.duplicates + summary.refused, summary.image_tokens, summary.seconds))

    llm = ChatAfarensis(api_key="sk-not-used", base_url="http://127.0.0.1:9/v1")
    summary = describe_images(
        [TEST_IMAGES], out=tmp_path / "out.jsonl", llm=llm, detail="low", dry_run=True,
        workers=0, on_progress=progress,
    )  # fmt: skip
    assert len(seen) == summary.sources == 12  # one call an image, in the order they finished
    assert [tokens for _, tokens, _ in seen] == sorted(tokens for _, tokens, _ in seen)
    assert seen[-1][1] == summary.image_tokens == 935
    assert all(b >= a for (*_, a), (*_, b) in itertools.pairwise(seen))


async def test_describe_images_in_a_running_loop_says_to_await_the_async_one(
    tmp_path: Path,
) -> None:
    from langchain_afarensis_vision import describe_images

    with pytest.raises(RuntimeError, match=r"use `await adescribe_images\(\.\.\.\)`"):
        describe_images(["x.png"], out=tmp_path / "out.jsonl", dry_run=True)
    assert not (tmp_path / "out.jsonl").exists()


def test_a_script_without_a_main_guard_gets_told_how_to_fix_it(tmp_path: Path) -> None:
    """The pool's workers import the calling script again; unguarded, they die at start."""
    import subprocess
    import sys

    from tests._support import TEST_IMAGES

    script = tmp_path / "caption_all.py"
    script.write_text(
        "from langchain_afarensis_vision import ChatAfarensis, describe_images\n"
        "llm = ChatAfarensis(api_key='sk-not-used', base_url='http://127.0.0.1:9/v1')\n"
        f"describe_images([{str(TEST_IMAGES / 'hopper.png')!r}], out='out.jsonl', llm=llm,"
        " dry_run=True, workers=1)\n"
    )
    run = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1
    ours = "concurrent.futures.process.BrokenProcessPool: A worker process preparing images died"
    [last] = [line for line in run.stderr.splitlines() if line.startswith(ours)]
    assert 'if __name__ == "__main__":' in last
    assert "workers=0" in last
