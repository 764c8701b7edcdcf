"""``afarensis-vision``: the command line, thin glue over the package.

Commands:
    describe IMAGE...   ask the model about each image (files, folders, globs, URLs, @lists)
    demo [IMAGE...]     describe the sample images (or yours) on the embedded local server
    tokens IMAGE...     what would go out for each image, and its token cost, offline
    caption SOURCE...   describe a whole collection into a JSONL file: rate-limited, resumable
    index PATH...       index the pages of PDFs and images (resumable, incremental)
    search QUERY        the indexed pages that best match a query, offline
    ask QUESTION        an answer from the best pages, citing file and page
    serve               run the local Afarensis-compatible server in the foreground

Exit codes, the same for every command: 0 when everything asked for was done, 1 when any image
failed or was refused (or a run stopped early), 2 for a usage error (bad options, no images, no
API key, a missing extra), with one line saying what to do.

The modules behind it: :mod:`.cli._commands` (the image commands), :mod:`.cli._documents`
(index, search, ask), :mod:`.cli._records` (what
``--json`` prints), :mod:`.cli._show` (what a person reads), :mod:`.cli._local` (the API or
the local server), :mod:`.cli._options` (argument types, the options of run commands).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from langchain_afarensis_vision._api.contract import DEFAULT_MODEL, DETAILS, MAX_OUTPUT_TOKENS
from langchain_afarensis_vision._version import __version__
from langchain_afarensis_vision.cli._documents import add_parsers as add_document_parsers
from langchain_afarensis_vision.cli._local import (
    EXIT_FAILED,
    EXIT_USAGE,
    LOG_LEVELS,
    UsageError,
    serve,
)
from langchain_afarensis_vision.cli._options import integer, positive, run_options

DEFAULT_MAX_TOKENS = 300
_IMAGES_HELP = "image files, folders, globs, http(s) URLs, or @list.txt (one a line)"


def _max_tokens(text: str) -> int:
    value = positive(text)
    if value > MAX_OUTPUT_TOKENS:
        msg = f"the model writes at most {MAX_OUTPUT_TOKENS} tokens; got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _port(text: str) -> int:
    return integer(text, 0, 65535, "a port number from 0 to 65535")


def _image_options(command: argparse.ArgumentParser, recursive: bool = True) -> None:
    if recursive:  # caption always walks folders recursively
        command.add_argument(
            "--recursive", "-r", action="store_true", help="look in subfolders of folders too"
        )
    command.add_argument(
        "--detail",
        choices=DETAILS,
        default="auto",
        help="the detail level: low (85 tokens, 512 px), high, or auto (as high) [auto]",
    )
    command.add_argument(
        "--first-frame",
        action="store_true",
        help="send the first frame of an animated GIF/WEBP/PNG instead of refusing it",
    )


def _model_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--question", "-q", default=None, help="what to ask about each image [describe it]"
    )
    command.add_argument("--model", default=DEFAULT_MODEL, help=f"the model [{DEFAULT_MODEL}]")
    command.add_argument(
        "--max-tokens",
        type=_max_tokens,
        default=DEFAULT_MAX_TOKENS,
        help=f"most tokens in each answer (up to {MAX_OUTPUT_TOKENS}) [{DEFAULT_MAX_TOKENS}]",
    )


def _json_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--json", action="store_true", help="print a JSON array: one record of fields per image"
    )


def _describe_parsers(commands: Any) -> None:
    from langchain_afarensis_vision.cli._commands import cmd_describe, cmd_tokens

    describe = commands.add_parser(
        "describe",
        help="ask the model about images",
        description="Ask the Afarensis API (AFARENSIS_API_KEY, AFARENSIS_BASE_URL) about each "
        "image, or the embedded local server with --local.",
    )
    describe.add_argument("paths", nargs="+", metavar="IMAGE", help=_IMAGES_HELP)
    describe.add_argument(
        "--local",
        action="store_true",
        help="ask the embedded local server (offline answers; needs the 'server' extra)",
    )
    demo = commands.add_parser(
        "demo",
        help="describe sample images on the embedded local server",
        description="Describe the package's sample images (or yours) on the embedded local "
        "server: offline, no key needed (needs the 'server' extra).",
    )
    demo.add_argument(
        "paths", nargs="*", metavar="IMAGE", help=f"{_IMAGES_HELP} [the sample images]"
    )
    demo.set_defaults(local=True)
    for command in (describe, demo):
        _model_options(command)
        _image_options(command)
        _json_option(command)
        command.set_defaults(run=cmd_describe)
    tokens = commands.add_parser(
        "tokens",
        help="what each image costs, and what would go out for it (offline)",
        description="Prepare each image as describe would, offline: its size, format and "
        "token cost. No request is made.",
    )
    tokens.add_argument("paths", nargs="+", metavar="IMAGE", help=_IMAGES_HELP)
    tokens.add_argument(
        "--show",
        action="store_true",
        help="also write what the model sees as a picture: the image sent, its 512-px tiles "
        "drawn over it, sizes, bytes and the token sum below, to <file name>.tokens.png in "
        "the current folder; and print the token arithmetic",
    )
    tokens.add_argument(
        "--show-dir",
        metavar="DIR",
        default=None,
        help="write the --show pictures into DIR instead (created if missing; implies --show)",
    )
    _image_options(tokens)
    _json_option(tokens)
    tokens.set_defaults(run=cmd_tokens)


def _caption_parser(commands: Any) -> None:
    from langchain_afarensis_vision.cli._commands import cmd_caption

    caption = commands.add_parser(
        "caption",
        help="describe many images into a JSONL file (rate-limited, resumable)",
        description="Describe a whole collection into a JSONL file, within the rate limits; "
        "run it again to resume.",
    )
    caption.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="image files, folders (with their subfolders), globs, http(s) URLs, or @list.txt",
    )
    caption.add_argument("--out", "-o", required=True, help="the JSONL file (resumed if it exists)")
    _model_options(caption)
    _image_options(caption, recursive=False)
    run_options(
        caption,
        each="requests",
        budget="stop before the tokens charged to --out over all its runs pass this (kept in "
        "<out>.state; a request that got no answer stays charged)",
        dry_run="prepare and count, send nothing",
    )
    caption.set_defaults(run=cmd_caption)


def _serve_parser(commands: Any) -> None:
    serve_command = commands.add_parser(
        "serve",
        help="run the local Afarensis-compatible server",
        description="Run the local Afarensis-compatible server in the foreground until Ctrl+C "
        "(needs the 'server' extra). Each request is logged on stderr.",
    )
    serve_command.add_argument(
        "--host", default="127.0.0.1", help="the interface to listen on [127.0.0.1]"
    )
    serve_command.add_argument(
        "--port", type=_port, default=8000, help="the port; 0 picks a free one [8000]"
    )
    serve_command.add_argument(
        "--api-key", default=None, help="the key to accept [a generated one, printed]"
    )
    serve_command.add_argument(
        "--rpm", type=positive, default=None, help="requests per minute limit [none]"
    )
    serve_command.add_argument(
        "--tpm", type=positive, default=None, help="tokens per minute limit [none]"
    )
    serve_command.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="beyond loopback, fetch image URLs on private and loopback addresses too",
    )
    serve_command.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="info logs each request (never the key or image data) [info]",
    )
    serve_command.set_defaults(run=serve)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afarensis-vision",
        description="Afarensis GPT-4 with Vision from the command line. Exit codes: 0 done, "
        "1 some image failed or was refused, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _describe_parsers(commands)
    _caption_parser(commands)
    add_document_parsers(commands)
    _serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code."""
    args = _parser().parse_args(argv)
    if getattr(args, "question", "") is None:
        from langchain_afarensis_vision.chat_models._messages import DEFAULT_QUESTION

        args.question = DEFAULT_QUESTION
    try:
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_one_line, args.command)
            return int(args.run(args))
    except UsageError as error:
        print(f"afarensis-vision {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (``| head``): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _one_line(command: str, message: Warning | str, *_: object) -> None:
    """A warning as one line on stderr (e.g. an entry that names no image), not Python's two."""
    print(f"afarensis-vision {command}: warning: {message}", file=sys.stderr)
