"""The CLI's commands that name images: ``describe``, ``demo``, ``tokens`` and ``caption``.

Each returns its exit code: 0 when every image was done, 1 when any failed or was refused;
a :class:`~.cli._local.UsageError` (exit 2) when nothing could be attempted.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Final

from langchain_afarensis_vision._api.contract import explain_image_tokens, is_fetched_url
from langchain_afarensis_vision._progress import Progress
from langchain_afarensis_vision._sources.listing import NoImagesFoundWarning, image_files
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import ImageUrl, question_message
from langchain_afarensis_vision.cli._local import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    connect,
)
from langchain_afarensis_vision.cli._records import (
    Record,
    answered,
    error_text,
    failed,
    not_offline,
    not_sent,
    prepared_record,
)
from langchain_afarensis_vision.cli._show import (
    REPEATS_NOTE,
    WIDTH,
    Repeats,
    describe_summary,
    fact_line,
    indented,
    refused_before_sending,
    tokens_summary,
)
from langchain_afarensis_vision.errors import EVERY_REQUEST_FAILS, AfarensisError
from langchain_afarensis_vision.images import PreparedImage
from langchain_afarensis_vision.images._view import picture_png

SAMPLES: Final = "samples"
"""The package's sample images (``demo`` without arguments): a few small files."""


def sample_images() -> str:
    """The folder of sample images shipped inside the package."""
    return str(Path(str(resources.files("langchain_afarensis_vision") / SAMPLES)))


def _sources(paths: list[str], recursive: bool) -> list[str]:
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", NoImagesFoundWarning)
            sources = image_files(paths, recursive)
    except OSError as error:  # an unreadable @list
        raise UsageError(f"{error.strerror or error}: {error.filename}") from None
    if not sources:
        raise UsageError(f"no images found in {', '.join(paths)}")
    for warning in said:  # some entries named nothing: say which, once each
        warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    return sources


def _exit_code(records: list[Record]) -> int:
    return EXIT_FAILED if any(r["error"] is not None for r in records) else EXIT_OK


def cmd_tokens(args: argparse.Namespace) -> int:
    """What each image costs and what would go out for it, offline (``--show``: as pictures)."""
    folder = _show_folder(args)
    records, used = [], set[str]()
    for source in _sources(args.paths, args.recursive):
        prepared, record = prepared_record(source, args.detail, args.first_frame)
        if is_fetched_url(source):
            not_offline(record)
        if folder is not None:
            record.update(picture=None, tiles=None)
            if prepared is not None:
                picture = _write_picture(prepared, source, folder, used)
                record["picture"] = picture and str(picture)
                record["tiles"] = explain_image_tokens(*prepared.source_size, prepared.detail)
        records.append(record)
    if args.json:
        print(json.dumps(records, indent=2))
        return _exit_code(records)
    print(f"Each image prepared offline (detail={args.detail}):")
    for record in records:
        print(fact_line(record))
        if record.get("tiles"):
            print(indented(record["tiles"]))
            print(indented(f"picture: {record['picture'] or '(too large to draw here)'}"))
    print(tokens_summary(records))
    if folder is not None:
        drawn = sum(bool(r["picture"]) for r in records)
        print(f"{drawn} {'picture' if drawn == 1 else 'pictures'} written to {folder}/")
    return _exit_code(records)


def _show_folder(args: argparse.Namespace) -> Path | None:
    """Where ``--show`` writes its pictures (made if missing), or None without ``--show``."""
    if not args.show and args.show_dir is None:
        return None
    folder = Path(args.show_dir or ".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--show-dir: {error.strerror or error}: {folder}") from None
    return folder


def _write_picture(
    prepared: PreparedImage, source: str, folder: Path, used: set[str]
) -> Path | None:
    """Write what the model sees to ``<file name>.tokens.png`` in ``folder`` (``-2`` if taken)."""
    png = picture_png(prepared)
    if png is None:
        return None
    stem = Path(source).name or "image"
    name, number = f"{stem}.tokens.png", 1
    while name in used:  # the same file name in two folders
        number += 1
        name = f"{stem}-{number}.tokens.png"
    used.add(name)
    path = folder / name
    try:
        path.write_bytes(png)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    return path


def cmd_describe(args: argparse.Namespace) -> int:
    """Ask about each image (``demo``: the sample images, on the local server)."""
    sources = _sources(args.paths or [sample_images()], args.recursive)
    options = {
        "model": args.model,
        "max_tokens": args.max_tokens,
        "image_first_frame": args.first_frame,
    }
    why = "the demo always uses it" if args.command == "demo" else "--local was given"
    records: list[Record] = []
    repeats = Repeats()
    # A bar on a terminal's stderr, unless the per-image lines are printed to the same terminal.
    show_bar = None if args.json or not sys.stdout.isatty() else False
    with (
        connect(args.local, why, **options) as target,
        Progress(len(sources), "Describing images", enabled=show_bar) as progress,
    ):
        for source in sources:
            record, stop = _describe_one(source, args, target.model, target.base_url)
            records.append(record)
            progress.advance()
            if not args.json:
                _show(record, repeats)
            if stop:
                break
    left = sources[len(records) :]  # not sent: each still gets its record, with the error
    records += [
        not_sent(prepared_record(s, args.detail, args.first_frame)[1], record) for s in left
    ]
    if args.json:
        print(json.dumps(records, indent=2))
    else:
        print(describe_summary(records))
        if repeats.trimmed:
            print(textwrap.fill(REPEATS_NOTE, WIDTH))
    if left:
        images = "image" if len(left) == 1 else "images"
        print(
            f"Stopped: every request would fail alike ({len(left)} {images} not sent).",
            file=sys.stderr,
        )
    return _exit_code(records)


def _describe_one(
    source: str, args: argparse.Namespace, model: ChatAfarensis, base_url: str | None
) -> tuple[Record, bool]:
    """The image's record, and whether to stop (every request would fail alike)."""
    prepared, record = prepared_record(source, args.detail, args.first_frame)
    record.update(answer=None, model=None, usage=None)
    if record["error"] is not None:
        return record, False
    image = prepared if prepared is not None else ImageUrl(source, args.detail)
    try:
        reply = model.invoke([question_message(args.question, image)])
    except AfarensisError as error:
        failed(record, error, base_url)
        return record, isinstance(error, EVERY_REQUEST_FAILS)
    answered(record, reply, model.model)
    return record, False


def _show(record: Record, repeats: Repeats) -> None:
    print(fact_line(record))
    if refused_before_sending(record):
        return
    if record["error"] is not None:
        print(indented(f"failed {error_text(record)}") + "\n")
    else:
        print(indented(repeats.shown(record["answer"])) + "\n")


def cmd_caption(args: argparse.Namespace) -> int:
    """Describe a whole collection into a JSONL file: rate-limited, resumable."""
    from langchain_afarensis_vision.corpus import describe_images

    options: dict[str, Any] = {
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
    model_options = {"model": args.model, "image_first_frame": args.first_frame}
    try:
        if args.dry_run:  # nothing is sent: no server, no key needed
            llm = ChatAfarensis(**model_options)
            summary = describe_images(args.sources, llm=llm, **options)
        else:
            with connect(args.local, **model_options) as target:
                summary = describe_images(args.sources, llm=target.model, **options)
    except AfarensisError as error:  # every image would fail alike (the key, the model)
        print(f"afarensis-vision caption: stopped: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, OSError) as error:  # e.g. an unreadable @list or --out
        raise UsageError(str(error)) from None
    if summary.stopped:
        print(summary.stopped, file=sys.stderr)
    print(summary.line())
    if args.dry_run and (summary.refused or summary.failed):  # some image would not go
        return EXIT_FAILED
    return summary.exit_code
