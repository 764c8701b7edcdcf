"""The corpus job end to end against the local server: records, resume, duplicates, bad files,
the token budget, the dry run's exact image tokens, a run killed with SIGKILL, resumed, and two
runs on one output."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from langchain_afarensis_vision import ChatAfarensis, adescribe_images, describe_images
from langchain_afarensis_vision.server import Faults, LocalAfarensisServer
from tests.integration_tests.conftest import jsonl, numbered_png

pytestmark = [pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]

FIELDS = {
    "source",
    "sha256",
    "description",
    "detail",
    "width",
    "height",
    "image_tokens",
    "prompt_tokens",
    "completion_tokens",
    "model",
    "error",
}


def _folder(root: Path, count: int) -> Path:
    folder = root / "images"
    (folder / "sub").mkdir(parents=True)
    for n in range(count):
        (folder / ("sub" if n % 2 else "") / f"img{n:03d}.png").write_bytes(numbered_png(n))
    return folder


def _model(server: LocalAfarensisServer, **kwargs: Any) -> ChatAfarensis:
    return ChatAfarensis(base_url=server.base_url, api_key=server.api_key, **kwargs)


def _caption(folder: Path, out: Path, *options: str) -> list[str]:
    """The ``caption`` command line, run as a user would (a process of its own)."""
    command = [sys.executable, "-m", "langchain_afarensis_vision.cli", "caption", str(folder)]
    return [*command, "--out", str(out), *options]


def _env(server: LocalAfarensisServer) -> dict[str, str]:
    """The environment that points the CLI at ``server``."""
    return os.environ | {"AFARENSIS_API_KEY": server.api_key, "AFARENSIS_BASE_URL": server.base_url}


def test_records_duplicates_bad_files_and_resume(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 3)
    (folder / "copy.png").write_bytes(numbered_png(0))  # the same bytes as img000.png
    (folder / "bad.png").write_bytes(b"not an image at all")
    out = tmp_path / "out.jsonl"
    with LocalAfarensisServer() as server:
        missing = describe_images([folder / "gone.png"], out=out, llm=_model(server), workers=0)
        assert (missing.refused, missing.failed, missing.exit_code) == (0, 1, 1)  # tried again
        summary = describe_images([folder], out=out, llm=_model(server), workers=0)
        assert summary.sent == 3  # the copy is not sent
        assert (summary.duplicates, summary.refused, summary.failed) == (1, 1, 0)
        assert summary.exit_code == 1
        assert ", 1 refused, 0 failed of 5 images;" in summary.line()
        assert summary.tokens_last_minute == summary.billed > 0  # all within the minute
        lines = jsonl(out)
        assert len(lines) == 5
        assert all(set(line) >= FIELDS for line in lines)
        by_name = {Path(line["source"]).name: line for line in lines}
        pair = sorted(
            (by_name["img000.png"], by_name["copy.png"]), key=lambda r: "duplicate_of" in r
        )
        first, copy, bad = *pair, by_name["bad.png"]
        assert first["error"] is None
        assert first["description"]
        assert (first["width"], first["height"], first["detail"]) == (40, 30, "auto")
        assert first["image_tokens"] == 255
        assert first["prompt_tokens"] > 255
        assert first["completion_tokens"] > 0
        assert first["model"] == "gpt-4-vision-preview"
        assert len(first["sha256"]) == 64
        assert copy["sha256"] == first["sha256"]
        assert copy["description"] == first["description"]
        assert copy["duplicate_of"] == first["source"]
        assert bad["error"]["type"] == "InvalidImageError"
        assert bad["error"]["code"]
        assert bad["description"] is None

        again = describe_images([folder], out=out, llm=_model(server), workers=0)
    assert (again.sent, again.skipped, again.failed, again.refused_earlier) == (0, 5, 0, 1)
    assert again.exit_code == 1  # one image has no description
    # The same word for the same image, in the run that refused it and in the one after.
    assert "5 already done (1 of them refused, not retried), 0 refused, 0 failed" in again.line()
    assert len(jsonl(out)) == 5  # the bad file is not tried again


def test_failed_requests_are_retried_and_a_torn_line_dropped(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 4)
    out = tmp_path / "out.jsonl"
    with LocalAfarensisServer() as server:
        dead = _model(server, max_retries=0)
    summary = describe_images(  # no server: connection errors, at once (limits given: no probe)
        [folder], out=out, llm=dead, workers=0, requests_per_minute=99, tokens_per_minute=99_999
    )
    assert (summary.failed, summary.exit_code) == (4, 1)
    assert {line["error"]["type"] for line in jsonl(out)} == {"APIConnectionError"}
    with out.open("a") as file:
        file.write('{"source": "torn')  # a crash in the middle of a line
    with LocalAfarensisServer() as server:
        again = describe_images([folder], out=out, llm=_model(server), workers=0)
    assert (again.sent, again.failed, again.exit_code) == (4, 0, 0)
    lines = jsonl(out)
    assert len(lines) == 4
    assert all(line["error"] is None for line in lines)


def test_budget_stops_before_it_could_be_passed(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 10)
    out = tmp_path / "out.jsonl"
    with LocalAfarensisServer() as server:
        plan = describe_images([folder], out=out, dry_run=True, max_tokens=50, workers=0)
        per_image = plan.max_billable // 10
        summary = describe_images(
            [folder],
            out=out,
            llm=_model(server),
            max_tokens=50,
            budget_tokens=per_image * 4 + 10,
            concurrency=2,
            workers=0,
        )
    assert summary.stopped is not None
    assert "budget" in summary.stopped
    assert summary.exit_code == 1
    assert 1 <= summary.sent <= 4
    assert summary.billed <= per_image * 4 + 10
    assert len(jsonl(out)) == summary.sent


async def test_dry_run_image_tokens_are_what_the_server_bills(tmp_path: Path) -> None:
    folder = tmp_path / "sizes"
    folder.mkdir()
    for n, size in enumerate([(40, 30), (800, 600), (3000, 500), (1024, 1024), (513, 2049)]):
        (folder / f"{n}.png").write_bytes(numbered_png(n, size))
    (folder / "dup.png").write_bytes(numbered_png(1, (800, 600)))
    out = tmp_path / "out.jsonl"
    billed: list[dict[str, Any]] = []

    async def record(response: httpx2.Response) -> None:
        await response.aread()
        billed.append(response.json()["usage"])

    plan = await adescribe_images(  # one at a time: the copy comes after its original is done
        [folder], out=out, dry_run=True, detail="high", workers=1, concurrency=1
    )
    assert not out.exists()  # a dry run writes nothing
    async with httpx2.AsyncClient(event_hooks={"response": [record]}) as client:
        with LocalAfarensisServer() as server:
            model = _model(server, http_async_client=client)
            summary = await adescribe_images([folder], out=out, llm=model, detail="high", workers=1)
    assert (plan.sources, plan.duplicates, summary.sent) == (6, 1, 5)
    image_tokens = sum(u["prompt_tokens_details"]["image_tokens"] for u in billed)
    assert plan.image_tokens == image_tokens == summary.image_tokens
    prompts = sum(u["prompt_tokens"] for u in billed)
    assert plan.max_billable == prompts + 5 * 300
    print(f"\ndry run: {plan.line()}")


def test_resume_after_sigkill_writes_every_source_once(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 40)
    out = tmp_path / "out.jsonl"
    command = _caption(folder, out, "--concurrency", "2", "--max-tokens", "50")
    with LocalAfarensisServer(faults=Faults(latency=0.1)) as server:
        env = _env(server)
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
            not out.exists() or out.read_bytes().count(b"\n") < 5
        ):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        # Its pipes close though it is not reaped yet (communicate reads them to the end
        # first): its image workers do not outlive it (they did, waiting while it was a zombie).
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        before = len(jsonl(out))
        assert 5 <= before < 40
        rerun = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    sources = [line["source"] for line in jsonl(out)]
    assert len(sources) == len(set(sources)) == 40
    assert f"{before} already done" in rerun.stdout
    print(f"\nkilled after {before} lines; resumed: {rerun.stdout.strip()}")


def test_two_runs_on_one_output_one_is_refused_and_every_digest_is_its_own(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="langchain_afarensis_vision.server")
    folder = tmp_path / "images"
    folder.mkdir()
    for n in range(40):  # 20 images, each twice
        (folder / f"img{n:03d}.png").write_bytes(numbered_png(n % 20))
    out = tmp_path / "out.jsonl"
    command = _caption(folder, out, "--concurrency", "4", "--max-tokens", "20")
    with LocalAfarensisServer(faults=Faults(latency=0.05)) as server:
        runs = [
            subprocess.Popen(
                command, env=_env(server), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=300) for run in runs]
    refused = [err for _, err in outputs if b"is being written by another run" in err]
    assert len(refused) <= 1  # the second is refused (or started after the first had ended)
    assert sorted(run.returncode for run in runs) == ([0, 1] if refused else [0, 0])
    records = jsonl(out)
    assert sorted(r["source"] for r in records) == sorted(str(p) for p in folder.iterdir())
    for record in records:
        assert record["sha256"] == hashlib.sha256(Path(record["source"]).read_bytes()).hexdigest()
    sent = [r for r in caplog.records if "chat/completions" in r.getMessage()]
    assert len(sent) == 20  # each distinct image billed once


def _billed(caplog: pytest.LogCaptureFixture, requests: int) -> int:
    """The tokens the local server billed, once it has answered ``requests`` requests."""
    deadline = time.monotonic() + 60  # answers held back by the server come late
    while True:
        lines = [r.getMessage() for r in caplog.records if "chat/completions" in r.getMessage()]
        if len(lines) >= requests or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == requests
    return sum(int(line.split(" tokens=")[1].split()[0]) for line in lines if " tokens=" in line)


async def test_the_budget_caps_what_the_server_bills_over_runs_with_timeouts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every answer comes after the client gave up, but the server bills it: each attempt is
    charged when sent and stays charged, and the count goes on from run to run."""
    caplog.set_level(logging.INFO, logger="langchain_afarensis_vision.server")
    folder = _folder(tmp_path, 12)
    out = tmp_path / "out.jsonl"
    sent: list[httpx2.Request] = []

    async def count(request: httpx2.Request) -> None:
        sent.append(request)

    budget = 2_000
    async with httpx2.AsyncClient(event_hooks={"request": [count]}) as client:
        with LocalAfarensisServer(faults=Faults(answer_latency=1.0)) as server:
            model = _model(server, timeout=0.2, http_async_client=client)
            runs = [
                await adescribe_images(
                    [folder], out=out, llm=model, max_tokens=20, budget_tokens=budget, workers=0
                )
                for _ in range(3)
            ]
            billed = _billed(caplog, len(sent))
    assert 0 < billed <= budget  # before: every run billed its images' three attempts each
    assert runs[0].stopped is not None
    assert runs[0].described == 0
    assert runs[0].charged >= billed  # what got no answer stays charged
    assert runs[1].sent == runs[2].sent == 0  # nothing more fits: the count went on
    assert runs[2].charged_before == runs[0].charged
    plan = await adescribe_images(
        [folder], out=out, max_tokens=20, budget_tokens=budget, dry_run=True, workers=0
    )
    assert f"{runs[0].charged:,} tokens already charged to this output" in plan.line()
    assert f"{budget - runs[0].charged:,} of --budget-tokens {budget:,} left" in plan.line()


def test_error_answers_are_not_charged(tmp_path: Path) -> None:
    folder = _folder(tmp_path, 3)
    out = tmp_path / "out.jsonl"
    with LocalAfarensisServer(faults=Faults(error_rate=1.0)) as server:
        summary = describe_images(
            [folder], out=out, llm=_model(server, max_retries=1), budget_tokens=10_000, workers=0
        )
    assert (summary.failed, summary.charged) == (3, 0)  # 6 answers, all 5xx: nothing billed
