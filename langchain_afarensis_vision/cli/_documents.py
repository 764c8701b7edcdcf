"""The CLI's document commands: ``index``, ``search`` and ``ask``.

``index`` renders and describes the pages of PDFs and images into an index folder (resumable,
within the rate limits, with a token budget and a dry run); ``search`` ranks its pages for a
query, offline; ``ask`` answers a question from the best pages with citations to file and page.
Exit codes as the other commands: 0 done, 1 a document or page failed (or the run stopped
early), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from langchain_afarensis_vision.cli._local import EXIT_FAILED, EXIT_OK, UsageError, connect
from langchain_afarensis_vision.cli._options import local_option, positive, run_options
from langchain_afarensis_vision.errors import AfarensisError

__all__ = ["add_parsers"]


def add_parsers(commands: Any) -> None:
    """The three commands' parsers."""
    index = commands.add_parser(
        "index",
        help="index the pages of PDFs and images for search and cited answers",
        description="Render each page of the PDFs and images PATHs name (folders recursively), "
        "have the model read each page image once, and index text and readings for search. "
        "Run it again to resume or to update: unchanged files are skipped, gone ones removed.",
    )
    index.add_argument("paths", nargs="+", metavar="PATH", help="PDF and image files, folders")
    _index_option(index)
    run_options(
        index,
        each="pages asked about",
        budget="stop before billing more tokens",
        dry_run="render and count the cost; send and change nothing",
    )
    index.add_argument("--model", default=None, help="the model [the index's, else the default]")
    _json_option(index)
    index.set_defaults(run=cmd_index)
    search = commands.add_parser(
        "search",
        help="the pages of an index that best match a query (offline)",
        description="Rank the indexed pages for QUERY (full text over each page's text layer "
        "and the model's reading of it). No request is made.",
    )
    search.add_argument("query", metavar="QUERY", help="what to look for, in words")
    _index_option(search)
    search.add_argument("--k", type=positive, default=5, help="how many pages [5]")
    search.add_argument("--json", action="store_true", help='print {"pages": [...]} as JSON')
    search.set_defaults(run=cmd_search)
    ask = commands.add_parser(
        "ask",
        help="answer a question from an index, citing file and page",
        description="Send QUESTION with the best pages' images and text layers to the model; "
        "print the answer and the pages it cites (each one a page that was sent).",
    )
    ask.add_argument("question", metavar="QUESTION", help="the question to answer from the pages")
    _index_option(ask)
    ask.add_argument("--k", type=positive, default=4, help="how many pages to send [4]")
    local_option(ask)
    _json_option(ask)
    ask.set_defaults(run=cmd_ask)


def _index_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--index", required=True, metavar="DIR", help="the index folder")


def _json_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_index(args: argparse.Namespace) -> int:
    """Index the documents: render, describe, write; print the summary."""
    from langchain_afarensis_vision.chat_models import ChatAfarensis
    from langchain_afarensis_vision.documents import PageIndex

    options = {
        "dry_run": args.dry_run,
        "budget_tokens": args.budget_tokens,
        "concurrency": args.concurrency,
        "requests_per_minute": args.rpm,
        "tokens_per_minute": args.tpm,
    }
    model = {"model": args.model} if args.model else {}
    try:
        if args.dry_run:  # nothing is sent: no server, no key needed
            with PageIndex(args.index, llm=ChatAfarensis(**model) if model else None) as index:
                summary = index.add(args.paths, **options)
        else:
            with (
                _model(args, model) as target,
                PageIndex(args.index, llm=target.model) as index,
            ):
                summary = index.add(args.paths, **options)
    except AfarensisError as error:  # every page would fail alike (the key, the model)
        print(f"afarensis-vision index: stopped: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, OSError) as error:  # a missing path, an index folder not writable
        raise UsageError(str(error)) from None
    for failure in summary.failed:
        where = f", page {failure['page']}" if failure["page"] else ""
        print(f"failed: {failure['file']}{where}: {failure['message']}", file=sys.stderr)
    if summary.corpus is not None and summary.corpus.stopped:
        print(summary.corpus.stopped, file=sys.stderr)
    if args.json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(summary.line())
    return summary.exit_code


def cmd_search(args: argparse.Namespace) -> int:
    """Print the best pages for the query."""
    with _opened(args) as index:
        hits = index.search(args.query, k=args.k)
    if args.json:
        pages = [{"file": h.file, "page": h.page, "score": round(h.score, 6)} for h in hits]
        print(json.dumps({"pages": pages}, ensure_ascii=False, indent=2))
    else:
        for hit in hits:
            print(f"{hit.score:8.3f}  {hit.file}, page {hit.page}")
        if not hits:
            print("No page matches.")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer the question from the best pages, with citations."""
    from langchain_afarensis_vision.documents import PageIndex

    with _opened(args) as found:
        settings = found.store.settings()
    try:
        with (
            _model(args, {"model": settings["model"]} if "model" in settings else {}) as target,
            PageIndex(args.index, llm=target.model) as index,
        ):
            result = index.ask(args.question, k=args.k)
    except AfarensisError as error:
        print(f"afarensis-vision ask: stopped: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(result)
    for marker in result.dropped:
        print(f"warning: the answer cited {marker}, a page not sent: dropped", file=sys.stderr)
    return EXIT_OK


def _model(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    return connect(args.local, **options)


def _opened(args: argparse.Namespace) -> Any:
    """The index folder given, which must hold an index (a search never creates one)."""
    from pathlib import Path

    from langchain_afarensis_vision.documents import PageIndex
    from langchain_afarensis_vision.documents._store import DATABASE

    if not (Path(args.index) / DATABASE).is_file():
        build = f"afarensis-vision index PATH --index {args.index}"
        msg = f"{args.index} holds no index: build one with `{build}`"
        raise UsageError(msg)
    return PageIndex(args.index)
