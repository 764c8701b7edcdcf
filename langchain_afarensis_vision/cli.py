"""``afarensis-vision``: the command line, thin glue over the package.

Commands:
    describe IMAGE...   ask the model about each image (``--local`` for the embedded server)
    demo [FOLDER...]    describe every image in a folder on the embedded local server
    tokens IMAGE...     what would be sent for each image, and its token cost, offline
    caption SOURCE...   describe a whole collection into a JSONL file: rate-limited, resumable
    serve               run the local Afarensis-compatible server in the foreground
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from langchain_afarensis_vision._contract import API_KEY_ENV, DETAILS, Detail
from langchain_afarensis_vision._messages import DEFAULT_QUESTION, question_message
from langchain_afarensis_vision._progress import Progress
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.document_loaders import image_files
from langchain_afarensis_vision.errors import AfarensisError, InvalidImageError
from langchain_afarensis_vision.images import PreparedImage, prepare_image


def _facts(path: Path, prepared: PreparedImage) -> dict[str, Any]:
    w, h = prepared.source_size
    return {
        "image": path.name,
        "source": f"{prepared.source_format} {w}x{h}",
        "sent": f"{prepared.mime_type} {prepared.width}x{prepared.height}",
        "bytes_before": prepared.source_bytes,
        "bytes_after": len(prepared.data),
        "tokens": prepared.tokens,
        "changed": prepared.changed,
    }


def _prepare(path: Path, detail: Detail) -> tuple[PreparedImage | None, dict[str, Any]]:
    try:
        prepared = prepare_image(path, detail)
    except (InvalidImageError, OSError) as exc:
        code = getattr(exc, "code", "unreadable")
        return None, {"image": path.name, "refused": code, "reason": str(exc)}
    return prepared, _facts(path, prepared)


def _fact_line(row: dict[str, Any]) -> str:
    if "refused" in row:
        return f"{row['image']:<26} refused ({row['refused']}): {row['reason']}"
    sizes = f"{row['bytes_before']:,} -> {row['bytes_after']:,} bytes"
    note = "" if row["changed"] else " (sent as is)"
    return (
        f"{row['image']:<26} {row['source']:<18} -> {row['sent']:<20} {sizes:>26}"
        f" {row['tokens']:>5} tokens{note}"
    )


def _summary(rows: list[dict[str, Any]]) -> str:
    sent = [r for r in rows if "refused" not in r]
    before = sum(r["bytes_before"] for r in sent)
    after = sum(r["bytes_after"] for r in sent)
    tokens = sum(r["tokens"] for r in sent)
    return (
        f"{len(sent)} of {len(rows)} images sent: {before:,} bytes became {after:,}; "
        f"{tokens:,} image tokens."
    )


def _cmd_tokens(args: argparse.Namespace) -> int:
    rows = [_prepare(path, args.detail)[1] for path in [Path(p) for p in image_files(args.paths)]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"What would be sent (detail={args.detail}):")
    for row in rows:
        print(_fact_line(row))
    print(_summary(rows))
    return 0


@contextlib.contextmanager
def _model(local: bool, say: bool) -> Iterator[ChatAfarensis]:
    """A ChatAfarensis for the configured API, or for an embedded local server."""
    if not local and os.environ.get(API_KEY_ENV):
        yield ChatAfarensis()
        return
    from langchain_afarensis_vision.server import LocalAfarensisServer

    with LocalAfarensisServer() as server:
        if say:
            reason = "--local was given" if local else f"{API_KEY_ENV} is not set"
            print(
                f"Using the embedded local Afarensis server at {server.base_url} ({reason}): "
                "answers come from its offline engine, not GPT-4V.",
                file=sys.stderr,
            )
        yield ChatAfarensis(base_url=server.base_url, api_key=server.api_key)


def _describe(model: ChatAfarensis, prepared: PreparedImage, question: str) -> str:
    return model.invoke([question_message(question, prepared)]).text


def _cmd_describe(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in image_files(args.paths)]
    if not paths:
        print("No images found.", file=sys.stderr)
        return 1
    failures = 0
    rows: list[dict[str, Any]] = []
    # A bar on a terminal's stderr, unless the per-image lines are printed to the same terminal.
    show_bar = None if args.json or not sys.stdout.isatty() else False
    with (
        _model(args.local, say=True) as model,
        Progress(len(paths), "Describing images", enabled=show_bar) as progress,
    ):
        for path in paths:
            prepared, row = _prepare(path, args.detail)
            if prepared is not None:
                try:
                    row["answer"] = _describe(model, prepared, args.question)
                except AfarensisError as exc:
                    row["error"] = exc.message
            failures += "refused" in row or "error" in row
            rows.append(row)
            progress.advance()
            if not args.json:
                print(_fact_line(row))
                if "refused" not in row:
                    print(f"    {row.get('answer') or row.get('error')}\n")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_summary(rows))
    return 1 if failures == len(paths) else 0


def _cmd_caption(args: argparse.Namespace) -> int:
    from langchain_afarensis_vision.corpus import describe_images

    options = {
        "out": args.out,
        "question": args.question,
        "detail": args.detail,
        "max_tokens": args.max_tokens,
        "concurrency": args.concurrency,
        "requests_per_minute": args.rpm,
        "tokens_per_minute": args.tpm,
        "budget_tokens": args.budget_tokens,
        "dry_run": args.dry_run,
    }
    try:
        if args.dry_run:  # nothing is sent: no server, no key needed
            summary = describe_images(args.sources, llm=ChatAfarensis(), **options)
        else:
            with _model(args.local, say=True) as model:
                summary = describe_images(args.sources, llm=model, **options)
    except (ValueError, OSError) as error:  # e.g. an unreadable @list or --out
        print(f"afarensis-vision caption: {error}", file=sys.stderr)
        return 2
    except AfarensisError as error:  # every image would fail alike (the key, the model)
        print(f"afarensis-vision caption: stopped: {error.message}", file=sys.stderr)
        return 1
    if summary.stopped:
        print(summary.stopped, file=sys.stderr)
    print(summary.line())
    return summary.exit_code


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        msg = f"must be a positive integer; got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _caption_parser(commands: Any) -> None:
    caption = commands.add_parser(
        "caption", help="describe many images into a JSONL file (rate-limited, resumable)"
    )
    caption.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="file, folder, glob, URL or @list.txt"
    )
    caption.add_argument("--out", "-o", required=True, help="the JSONL file (resumed if it exists)")
    caption.add_argument("--question", "-q", default=DEFAULT_QUESTION)
    caption.add_argument("--detail", choices=DETAILS, default="auto")
    caption.add_argument("--max-tokens", type=_positive, default=300)
    caption.add_argument("--concurrency", type=_positive, default=8)
    caption.add_argument("--rpm", type=_positive, default=None, help="cap requests per minute")
    caption.add_argument("--tpm", type=_positive, default=None, help="cap tokens per minute")
    caption.add_argument(
        "--budget-tokens", type=_positive, default=None, help="stop before billing more"
    )
    caption.add_argument("--dry-run", action="store_true", help="prepare and count, send nothing")
    caption.add_argument("--local", action="store_true", help="use an embedded local server")
    caption.set_defaults(run=_cmd_caption)


def _cmd_serve(args: argparse.Namespace) -> int:
    from langchain_afarensis_vision.server import serve_main

    return serve_main(
        args.host,
        args.port,
        args.api_key,
        args.rpm,
        args.tpm,
        allow_private_urls=args.allow_private_urls,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afarensis-vision", description="Afarensis GPT-4 with Vision from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser("describe", help="ask the model about images")
    describe.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER")
    describe.add_argument("--question", "-q", default=DEFAULT_QUESTION)
    describe.add_argument("--local", action="store_true", help="use an embedded local server")
    describe.set_defaults(run=_cmd_describe)
    demo = commands.add_parser("demo", help="describe a folder of images on the local server")
    demo.add_argument("paths", nargs="*", metavar="FOLDER", default=["../shared/images"])
    demo.add_argument("--question", "-q", default=DEFAULT_QUESTION)
    demo.set_defaults(run=_cmd_describe, local=True)
    tokens = commands.add_parser("tokens", help="what would be sent, and its cost, offline")
    tokens.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER")
    tokens.set_defaults(run=_cmd_tokens)
    for command in (describe, demo, tokens):
        command.add_argument("--detail", choices=DETAILS, default="auto")
        command.add_argument("--json", action="store_true", help="print JSON")
    _caption_parser(commands)
    serve = commands.add_parser("serve", help="run the local Afarensis-compatible server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", default=None, help="the key to accept (default: generated)")
    serve.add_argument("--rpm", type=int, default=None, help="requests per minute limit")
    serve.add_argument("--tpm", type=int, default=None, help="tokens per minute limit")
    serve.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="beyond loopback, fetch image URLs on private and loopback addresses too",
    )
    serve.set_defaults(run=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    args = _parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
