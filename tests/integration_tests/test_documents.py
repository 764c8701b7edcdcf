"""Documents in, cited answers out, over real HTTP on the local server: ``documents.PageIndex``
and the ``index``/``search``/``ask`` commands.

The server counts requests (its requests-per-minute window), so "a second index of an unchanged
corpus sends nothing" is checked where the requests arrive, not only in the client's summary.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision.documents import CitedAnswer, PageIndex
from langchain_afarensis_vision.documents._answer import cited_answer
from langchain_afarensis_vision.server import LocalAfarensisServer
from langchain_afarensis_vision.server.faults import Faults
from tests.documents_support import text_pdf

pytestmark = pytest.mark.enable_socket

IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"
RPM = 100_000  # a limit only so the server counts requests in its minute window


@pytest.fixture(scope="module")
def server() -> Iterator[LocalAfarensisServer]:
    with LocalAfarensisServer(requests_per_minute=RPM, ocr=False) as running:
        yield running


def served(server: LocalAfarensisServer) -> int:
    state = server.rate_limits()
    return state.limit_requests - state.remaining_requests


def model(server: LocalAfarensisServer) -> ChatAfarensis:
    return ChatAfarensis(base_url=server.base_url, api_key=server.api_key, max_retries=0)


def corpus(root: Path) -> Path:
    docs = root / "docs"
    (docs / "annual").mkdir(parents=True)
    text_pdf(
        docs / "annual" / "report.pdf",
        [
            "Annual report 2023\nThe company grew in every region.",
            "Energy\nThe Lindqvist turbine array produced 4,812 megawatt-hours in March.",
            "Staff\nHeadcount reached 212 engineers across four offices.",
        ],
    )
    text_pdf(docs / "notes.pdf", ["Meeting notes\nThe budget for Kestrel Bay is 9.4 million."])
    shutil.copy(IMAGES / "hopper.jpg", docs / "hopper.jpg")
    return docs


def test_index_search_and_a_second_run_that_sends_nothing(
    tmp_path: Path, server: LocalAfarensisServer
) -> None:
    docs = corpus(tmp_path)
    with PageIndex(tmp_path / "index", llm=model(server), workers=0) as index:
        before = served(server)
        first = index.add([docs])
        assert first.failed == []
        assert (first.files, first.indexed, first.pages, first.described) == (3, 3, 5, 5)
        assert first.requests == served(server) - before == 5  # one request a page image
        hits = index.search("How much energy did the Lindqvist turbines generate?", k=3)
        assert (hits[0].file, hits[0].page) == ("annual/report.pdf", 2)
        assert hits[0].image is not None
        assert hits[0].image.is_file()
        assert hits[0].description is not None
        assert "local Afarensis engine" in hits[0].description
        again = index.add([docs])
        assert (again.unchanged, again.indexed, again.rendered, again.requests) == (3, 0, 0, 0)
        assert served(server) - before == 5  # the second run sent nothing
    with PageIndex(tmp_path / "index") as reopened:  # the model and prompt were kept
        assert reopened.llm.model == "gpt-4-vision-preview"
        assert reopened.search("Kestrel Bay budget", k=1)[0].file == "notes.pdf"


def test_a_changed_file_is_read_again_and_a_gone_one_removed(
    tmp_path: Path, server: LocalAfarensisServer
) -> None:
    docs = corpus(tmp_path)
    with PageIndex(tmp_path / "index", llm=model(server), workers=0) as index:
        index.add([docs])
        text_pdf(
            docs / "notes.pdf",
            [
                "Meeting notes\nThe budget for Kestrel Bay is 9.4 million.",
                "Addendum\nThe Osprey wing opens in May.",
            ],
        )
        (docs / "hopper.jpg").unlink()
        before = served(server)
        update = index.add([docs])
        assert (update.indexed, update.unchanged, update.removed) == (1, 1, 1)
        assert update.rendered == 2  # only notes.pdf's pages
        assert update.requests == served(server) - before == 1  # page 1's image is the same
        assert [(h.file, h.page) for h in index.search("Osprey wing", k=1)] == [("notes.pdf", 2)]
        assert index.search("hopper", k=5) == [] or all(
            h.file != "hopper.jpg" for h in index.search("hopper", k=5)
        )
        assert len(index) == 5


def test_a_broken_document_is_listed_and_the_rest_is_indexed(
    tmp_path: Path, server: LocalAfarensisServer
) -> None:
    docs = corpus(tmp_path)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4\nnot a pdf at all")
    with PageIndex(tmp_path / "index", llm=model(server), workers=0) as index:
        summary = index.add([docs])
    assert summary.pages == 5
    assert summary.failed == [
        {
            "file": "broken.pdf",
            "page": None,
            "message": "broken.pdf cannot be read as a PDF (not a PDF or damaged)",
        }
    ]
    assert summary.exit_code == 1


def test_a_dry_run_counts_the_cost_and_changes_nothing(
    tmp_path: Path, server: LocalAfarensisServer
) -> None:
    docs = corpus(tmp_path)
    with PageIndex(tmp_path / "index", llm=model(server), workers=0) as index:
        before = served(server)
        plan = index.add([docs], dry_run=True)
        assert served(server) == before
        assert len(index) == 0
        assert plan.corpus is not None
        assert plan.corpus.max_billable > 0
        assert plan.rendered == 5
        assert plan.described == 0
        real = index.add([docs])
    assert real.corpus is not None
    assert real.corpus.billed <= plan.corpus.max_billable


def test_ask_cites_only_pages_that_were_sent(tmp_path: Path, server: LocalAfarensisServer) -> None:
    docs = corpus(tmp_path)
    with PageIndex(tmp_path / "index", llm=model(server), workers=0) as index:
        index.add([docs])
        result = index.ask("How many engineers are on staff?", k=2)
    assert isinstance(result, CitedAnswer)
    sent = {(hit.file, hit.page) for hit in result.pages}
    assert ("annual/report.pdf", 3) in sent
    assert set(result.citations) <= sent
    assert "local Afarensis engine" in result.answer
    assert "annual/report.pdf, page" in result._repr_html_()


def test_a_citation_of_a_page_not_sent_is_dropped_and_flagged(tmp_path: Path) -> None:
    from langchain_afarensis_vision.documents import PageHit

    pages = [
        PageHit("a.pdf", 2, 3, 1.0, None, None, "text", None, True),
        PageHit("b.pdf", 1, 1, 0.5, None, None, "text", None, True),
    ]
    result = cited_answer("q", "Revenue rose [2]. Costs fell [1, 7]. Staff grew [9].", pages)
    assert result.citations == [("b.pdf", 1), ("a.pdf", 2)]
    assert result.dropped == ["[7]", "[9]"]
    assert result.answer == "Revenue rose [2]. Costs fell [1]. Staff grew ."
    assert result.to_dict()["citations"] == [
        {"file": "b.pdf", "page": 1},
        {"file": "a.pdf", "page": 2},
    ]


# -- the command line ----------------------------------------------------------------------------


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "langchain_afarensis_vision.cli", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False
    )


def api_env(server: LocalAfarensisServer) -> dict[str, str]:
    return os.environ | {"AFARENSIS_API_KEY": server.api_key, "AFARENSIS_BASE_URL": server.base_url}


def test_cli_index_search_ask_in_json(tmp_path: Path, server: LocalAfarensisServer) -> None:
    docs = corpus(tmp_path)
    index = str(tmp_path / "index")
    env = api_env(server)
    built = cli("index", str(docs), "--index", index, "--json", env=env)
    assert built.returncode == 0, built.stderr
    assert json.loads(built.stdout)["requests"] == 5
    found = cli("search", "--index", index, "Lindqvist turbine energy", "--k", "2", "--json")
    assert found.returncode == 0, found.stderr
    pages = json.loads(found.stdout)["pages"]
    assert pages[0]["file"] == "annual/report.pdf"
    assert pages[0]["page"] == 2
    assert set(pages[0]) == {"file", "page", "score"}
    asked = cli("ask", "--index", index, "What is the Kestrel Bay budget?", "--json", env=env)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert set(answer) >= {"answer", "citations", "pages"}
    sent = {(p["file"], p["page"]) for p in answer["pages"]}
    assert {(c["file"], c["page"]) for c in answer["citations"]} <= sent
    assert ("notes.pdf", 1) in sent
    again = cli("index", str(docs), "--index", index, "--json", env=env)
    assert json.loads(again.stdout)["requests"] == 0


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = cli("search", "--index", str(tmp_path / "none"), "query")
    assert missing.returncode == 2
    assert "holds no index" in missing.stderr
    nothing = cli("index", str(tmp_path / "nowhere"), "--index", str(tmp_path / "i"), "--local")
    assert nothing.returncode == 2
    assert "neither a file nor a folder" in nothing.stderr


def test_kill_9_during_index_loses_nothing_and_describes_nothing_twice(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(6):
        text_pdf(
            docs / f"d{n}.pdf",
            [f"Document {n} page {p} about topic {n * 10 + p}" for p in range(5)],
        )
    index = str(tmp_path / "index")
    with LocalAfarensisServer(requests_per_minute=RPM, ocr=False, faults=_latency(0.2)) as slow:
        env = api_env(slow)
        command = [
            sys.executable,
            "-m",
            "langchain_afarensis_vision.cli",
            "index",
            str(docs),
            "--index",
            index,
            "--concurrency",
            "2",
        ]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        log = Path(index) / "descriptions.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            not log.exists() or log.read_bytes().count(b"\n") < 6
        ):
            time.sleep(0.05)
        with PageIndex(index) as reading:  # readable while it is written
            assert reading.search("topic", k=3) is not None
        process.send_signal(signal.SIGKILL)
        process.wait()
        sent_before = served(slow)
        described_before = log.read_bytes().count(b"\n")
        rerun = cli("index", str(docs), "--index", index, "--json", env=env)
        assert rerun.returncode == 0, rerun.stderr
        summary = json.loads(rerun.stdout)
        total = served(slow)
    assert summary["pages"] == 30
    in_flight = 2
    assert total <= 30 + in_flight  # nothing described twice beyond what was in flight
    assert summary["requests"] == 30 - described_before  # only what the log did not hold
    assert total - sent_before <= summary["requests"] + in_flight  # + what was in flight
    with PageIndex(index) as done:
        assert all(hit.description for hit in done.pages())


def _latency(seconds: float) -> Faults:
    return Faults(latency=seconds)
