"""Documents in, cited answers out: the page index against what a text RAG and OCR would find.

Run: ``.venv/bin/python benchmarks/bench_documents.py [--pdfs 30] [--long-pages 2000] [--seed 0]``

The corpus: ``tests/documents_corpus.build_corpus`` in a temporary folder (about 30 PDFs of 1 to
6 pages and two long ones, and four image files; 44 facts, in the text layer, only in raster
images on a page, in whole-page scans, and in vector charts whose words are glyph outlines),
with paraphrased questions and their gold pages. Same run, same questions, three systems:

* ours: ``PageIndex(folder, llm=ChatAfarensis(...)).add([corpus])``, then ``search(q, k=5)``
  and ``ask(q, k=4)``, against a ``LocalAfarensisServer(ocr=True)`` in its own process (the
  local engine reads each page with OCR and describes it);
* text layer: SQLite FTS5 ``bm25()`` over each page's text layer (pypdfium2): what a text-only
  RAG gets;
* text + OCR: the same over the text layer plus the text OCR reads on the page rendered at the
  size the model sees (``detail`` high: a letter page at 768 x 994), with the package's own OCR
  (``server._ocr.read_text``), no model.

The baselines use FTS5's ``porter unicode61 remove_diacritics 2`` tokenizer and a query of the
question's words joined by OR. Reported per kind: hit@1, hit@5 and nDCG@5 (binary relevance,
every gold page relevant). For ours also: the share of answers citing a gold page; whether
every citation is a page that was sent; the share of answers holding the fact's value; pages
indexed per second against the floor, ``cores / (render CPU + describe CPU per page)``, where
render CPU is measured here (pypdfium2 at the model's size + PNG encoding, one page at a time)
and describe CPU is the server process's CPU over the first ``add`` divided by the requests it
got (``/proc/<pid>/stat``); the requests a second ``add`` of the unchanged corpus sends (from
the summary and counted by the server); and the peak RSS (``ru_maxrss``, its own and its
render workers') of a fresh child process indexing a ``--long-pages`` PDF of text pages
against a server without OCR (the describe step is not what is measured there).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import multiprocessing
import os
import re
import resource
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import load_average, machine, process_cpu, result, server_process

from langchain_afarensis_vision import ChatAfarensis
from langchain_afarensis_vision._api.contract import effective_size
from langchain_afarensis_vision.documents import PageIndex
from tests.documents_corpus import (
    KINDS,
    Corpus,
    Question,
    build_corpus,
    build_long_pdf,
    check_corpus,
)

Page = tuple[str, int]
Search = Callable[[str], list[Page]]
K = 5
TOKENIZER = "porter unicode61 remove_diacritics 2"


@dataclass
class Rendered:
    """Every page of the corpus: its text layer and its image at the model's size (PNG)."""

    text: dict[Page, str] = field(default_factory=dict)
    png: dict[Page, bytes] = field(default_factory=dict)
    cpu: float = 0.0  # render + encode, this process


def render_corpus(corpus: Corpus) -> Rendered:
    """Text layers and page images (pypdfium2 at the ``detail`` high size); image files as is."""
    import pypdfium2 as pdfium

    rendered = Rendered()
    for file in corpus.files:
        path = corpus.directory / file
        if not file.endswith(".pdf"):
            rendered.text[(file, 1)] = ""
            rendered.png[(file, 1)] = path.read_bytes()
            continue
        document = pdfium.PdfDocument(str(path))
        for index in range(len(document)):
            began = time.process_time()
            page = document[index]
            width, height = page.get_size()
            pixels = effective_size(
                round(width * 2048 / max(width, height)),
                round(height * 2048 / max(width, height)),
                "high",
            )
            bitmap = page.render(scale=pixels[0] / width)
            buffer = io.BytesIO()
            bitmap.to_pil().save(buffer, "PNG", compress_level=1)
            rendered.cpu += time.process_time() - began
            textpage = page.get_textpage()
            rendered.text[(file, index + 1)] = textpage.get_text_range()
            rendered.png[(file, index + 1)] = buffer.getvalue()
            textpage.close()
            page.close()
        document.close()
    return rendered


def bm25_search(texts: dict[Page, str]) -> Search:
    """FTS5 ``bm25()`` over ``texts``: a function from a question to its top pages."""
    database = sqlite3.connect(":memory:")
    database.execute(f"CREATE VIRTUAL TABLE pages USING fts5(body, tokenize='{TOKENIZER}')")
    keys = list(texts)
    database.executemany(
        "INSERT INTO pages(rowid, body) VALUES (?, ?)", ((i, texts[k]) for i, k in enumerate(keys))
    )

    def search(question: str) -> list[Page]:
        words = re.findall(r"\w+", question.lower())
        query = " OR ".join(f'"{word}"' for word in words)
        rows = database.execute(
            "SELECT rowid FROM pages WHERE pages MATCH ? ORDER BY bm25(pages) LIMIT ?", (query, K)
        )
        return [keys[rowid] for (rowid,) in rows]

    return search


def ocr_texts(rendered: Rendered) -> tuple[dict[Page, str], float]:
    """Text layer + what OCR reads on each rendered page; the OCR CPU seconds (this process)."""
    from langchain_afarensis_vision.server import _ocr

    if not _ocr.available():
        raise SystemExit(f"the text + OCR baseline needs the ocr extra: {_ocr.INSTALL_HINT}")
    began = time.process_time()
    texts = {}
    for key, data in rendered.png.items():
        read = _ocr.read_text(data, hashlib.sha256(data).digest())
        texts[key] = f"{rendered.text[key]}\n{read}"
    return texts, time.process_time() - began


# -- scoring -----------------------------------------------------------------------------------


def scores(ranked: Sequence[Page], gold: Sequence[Page]) -> tuple[float, float, float]:
    """hit@1, hit@5, nDCG@5 of one ranking."""
    relevant = set(gold)
    gains = [1.0 if page in relevant else 0.0 for page in ranked[:K]]
    dcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(gains))
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(relevant), K)))
    return gains[0] if gains else 0.0, float(any(gains)), dcg / ideal


def evaluate(
    questions: Sequence[Question], search: Search
) -> dict[str, tuple[float, float, float]]:
    """Mean hit@1, hit@5, nDCG@5 by kind, and over all (``"all"``)."""
    per: dict[str, list[tuple[float, float, float]]] = {}
    for question in questions:
        row = scores(search(question.text), question.gold)
        per.setdefault(question.kind, []).append(row)
        per.setdefault("all", []).append(row)
    return {kind: mean_scores(rows) for kind, rows in per.items()}


def mean_scores(rows: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    """The mean of each figure."""
    n = len(rows)
    return (sum(r[0] for r in rows) / n, sum(r[1] for r in rows) / n, sum(r[2] for r in rows) / n)


def table(systems: dict[str, dict[str, tuple[float, float, float]]], counts: dict[str, int]) -> str:
    lines = [
        "| kind | questions | system | hit@1 | hit@5 | nDCG@5 |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for kind in (*KINDS, "all"):
        for name, figures in systems.items():
            h1, h5, ndcg = figures[kind]
            lines.append(f"| {kind} | {counts[kind]} | {name} | {h1:.2f} | {h5:.2f} | {ndcg:.2f} |")
    return "\n".join(lines)


# -- ours --------------------------------------------------------------------------------------


def relative(file: str, corpus: Corpus) -> str:
    """A hit's file as the gold set names it (relative to the corpus folder)."""
    path = Path(file)
    if path.is_absolute():
        return path.relative_to(corpus.directory).as_posix()
    return path.as_posix()


@dataclass
class Ours:
    figures: dict[str, tuple[float, float, float]]
    pages: int
    seconds: float
    requests: int
    describe_cpu: float
    again_requests: int
    again_counted: int
    cited_right: float
    cited_sent: float
    holds_value: float
    dropped: int


def run_ours(corpus: Corpus, questions: Sequence[Question], index_dir: Path) -> Ours:
    with server_process(counting=True, ocr=True) as server:
        llm = ChatAfarensis(base_url=server.base_url, api_key=server.api_key)
        index = PageIndex(index_dir, llm=llm)
        cpu, began = process_cpu(server.pid), time.perf_counter()
        summary = index.add([corpus.directory])
        seconds = time.perf_counter() - began
        describe_cpu = process_cpu(server.pid) - cpu
        counted = server.counts().requests
        again = index.add([corpus.directory])
        again_counted = server.counts().requests - counted

        def search(question: str) -> list[Page]:
            return [(relative(hit.file, corpus), hit.page) for hit in index.search(question, k=K)]

        figures = evaluate(questions, search)
        right = sent = holds = dropped = 0
        for question in questions:
            answer = index.ask(question.text, k=4)
            cited = [(relative(f, corpus), p) for f, p in answer.citations]
            shown = {(relative(h.file, corpus), h.page) for h in getattr(answer, "pages", [])}
            right += any(page in question.gold for page in cited)
            sent += all(page in shown for page in cited)
            holds += question.answer.replace(",", "") in re.sub(
                r"(?<=\d)[,.\s](?=\d{3})", "", answer.answer
            )
            dropped += len(getattr(answer, "dropped", []))
        index.close()
    n = len(questions)
    return Ours(
        figures,
        getattr(summary, "rendered", summary.pages),
        seconds,
        summary.requests,
        describe_cpu,
        again.requests,
        again_counted,
        right / n,
        sent / n,
        holds / n,
        dropped,
    )


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM``, which exec resets (``ru_maxrss`` keeps the
    high-water mark of the process that forked it, here the benchmark with its page images)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _long_pdf_child(connection: Any, base_url: str, api_key: str, pdf: str, index_dir: str) -> None:
    before = peak_rss_mb()
    index = PageIndex(index_dir, llm=ChatAfarensis(base_url=base_url, api_key=api_key))
    summary = index.add([pdf])
    index.close()
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    connection.send((before, peak_rss_mb(), workers, summary.pages))


def long_pdf_rss(pages: int, folder: Path) -> tuple[float, float, float, int]:
    """Peak RSS (MB) before, of the indexing process and of its largest render worker; pages."""
    pdf = build_long_pdf(folder / "long.pdf", pages=pages)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    with server_process() as server:
        process = context.Process(
            target=_long_pdf_child,
            args=(child, server.base_url, server.api_key, str(pdf), str(folder / "long-index")),
        )
        process.start()
        child.close()
        figures: tuple[float, float, float, int] = parent.recv()
        process.join(60)
    return figures


# -- the run -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pdfs", type=int, default=30)
    parser.add_argument("--long-pages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(machine())
    print(f"load average before: {load_average()}")
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-documents-") as temporary:
        folder = Path(temporary)
        began = time.perf_counter()
        corpus = build_corpus(folder / "corpus", pdfs=args.pdfs, seed=args.seed)
        built = time.perf_counter() - began
        questions = corpus.questions
        counts = {kind: sum(q.kind == kind for q in questions) for kind in KINDS} | {
            "all": len(questions)
        }
        problems = check_corpus(corpus)
        print(
            f"corpus: {len(corpus.files)} files, {corpus.pages} pages, {len(questions)} questions "
            f"({', '.join(f'{k} {counts[k]}' for k in KINDS)}), built in {built:.1f} s; "
            f"checks: {problems or 'all kept'}"
        )
        rendered = render_corpus(corpus)
        render_cpu = rendered.cpu / len(rendered.png)
        print(f"render at the model's size: {render_cpu * 1000:.1f} ms CPU a page")
        with_ocr, ocr_cpu = ocr_texts(rendered)
        print(f"OCR (server._ocr.read_text, no model): {ocr_cpu / len(with_ocr):.2f} s CPU a page")
        systems = {
            "text layer BM25": evaluate(questions, bm25_search(rendered.text)),
            "text + OCR BM25": evaluate(questions, bm25_search(with_ocr)),
        }
        ours = run_ours(corpus, questions, folder / "index")
        systems = {"ours (PageIndex)": ours.figures, **systems}
        print()
        print(table(systems, counts))
        print()
        report(ours, render_cpu, cores, systems["text layer BM25"], systems["text + OCR BM25"])
        rss = long_pdf_rss(args.long_pages, folder)
        print(
            f"peak RSS indexing a {rss[3]:,}-page PDF: {rss[1]:.0f} MB (the process; "
            f"{rss[0]:.0f} MB before add), largest render worker {rss[2]:.0f} MB"
        )
        result(
            f"documents: peak RSS indexing a {args.long_pages:,}-page PDF (vs goal)",
            rss[1],
            400.0,
            "MB",
            "<= 400 MB",
            rss[1] <= 400,
        )
    print(f"load average after: {load_average()}")


def report(
    ours: Ours,
    render_cpu: float,
    cores: int,
    text: dict[str, tuple[float, float, float]],
    ocr: dict[str, tuple[float, float, float]],
) -> None:
    describe_cpu = ours.describe_cpu / max(ours.requests, 1)
    floor = cores / (render_cpu + describe_cpu)
    rate = ours.pages / ours.seconds
    print(
        f"ours: {ours.pages} pages indexed in {ours.seconds:.1f} s ({rate:.2f} pages/s), "
        f"{ours.requests} describe requests"
    )
    print(
        f"floor: {cores} cores / ({render_cpu * 1000:.0f} ms render + {describe_cpu * 1000:.0f} ms "
        f"describe CPU a page) = {floor:.2f} pages/s"
    )
    print(
        f"second add of the unchanged corpus: {ours.again_requests} requests (the server "
        f"counted {ours.again_counted})"
    )
    print(
        f"answers citing a gold page: {ours.cited_right:.2f}; answers whose every citation was "
        f"a page sent: {ours.cited_sent:.2f} ({ours.dropped} markers dropped); answers holding "
        f"the value: {ours.holds_value:.2f}"
    )
    drawn = [k for k in KINDS if k != "text"]
    worst = min(ours.figures[k][1] for k in drawn)
    result(
        "documents: hit@5, worst of raster/scan/vector (vs text-layer BM25)",
        worst,
        min(text[k][1] for k in drawn),
        "",
        ">= 0.9",
        worst >= 0.9,
    )
    for column, name in ((0, "hit@1"), (2, "nDCG@5")):
        mine, theirs = ours.figures["all"][column], ocr["all"][column]
        result(
            f"documents: {name}, all questions (vs text + OCR BM25)",
            mine,
            theirs,
            "",
            "> text + OCR",
            mine > theirs,
        )
    result(
        "documents: answers citing a gold page (vs goal)",
        ours.cited_right,
        0.7,
        "",
        ">= 0.7, every citation sent",
        ours.cited_right >= 0.7 and ours.cited_sent == 1.0,
    )
    result(
        "documents: pages indexed/s (vs the floor)",
        rate,
        floor,
        "",
        ">= 0.8x floor",
        rate >= 0.8 * floor,
    )
    result(
        "documents: requests on a second add (vs the first)",
        float(ours.again_counted),
        float(ours.requests),
        "",
        "0",
        ours.again_counted == 0 and ours.again_requests == 0,
    )


if __name__ == "__main__":
    main()
