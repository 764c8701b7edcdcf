"""``afarensis-vision``: the command line, thin glue over the package.

Commands:
    demo [FOLDER]       prepare every image in FOLDER and show what would be sent
    tokens IMAGE...     estimate each image's token cost offline
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_afarensis_vision._contract import DETAILS
from langchain_afarensis_vision.errors import InvalidImageError
from langchain_afarensis_vision.images import prepare_image

IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".ico",
    ".avif",
    ".heic",
}


def _images_in(paths: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    return found


def _report(path: Path, detail: str) -> dict[str, Any]:
    try:
        prepared = prepare_image(path, detail)  # type: ignore[arg-type]
    except InvalidImageError as exc:
        return {"image": path.name, "refused": exc.code, "reason": exc.message}
    return {
        "image": path.name,
        "source": f"{prepared.source_format} {prepared.source_size[0]}x{prepared.source_size[1]}",
        "sent": f"{prepared.mime_type} {prepared.width}x{prepared.height}",
        "bytes_before": prepared.source_bytes,
        "bytes_after": len(prepared.data),
        "tokens": prepared.tokens,
        "changed": prepared.changed,
    }


def _print_table(rows: list[dict[str, Any]], detail: str) -> None:
    print(f"What would be sent to the API (detail={detail}):\n")
    header = f"{'image':<26} {'source':<18} {'sent':<22} {'bytes':>21} {'tokens':>6}"
    print(header)
    print("-" * len(header))
    for row in rows:
        if "refused" in row:
            print(f"{row['image']:<26} refused: {row['refused']}: {row['reason']}")
            continue
        sizes = f"{row['bytes_before']:,} -> {row['bytes_after']:,}"
        note = "" if row["changed"] else "  (sent as is)"
        print(
            f"{row['image']:<26} {row['source']:<18} {row['sent']:<22} {sizes:>21} "
            f"{row['tokens']:>6}{note}"
        )
    sent = [r for r in rows if "refused" not in r]
    before = sum(r["bytes_before"] for r in sent)
    after = sum(r["bytes_after"] for r in sent)
    tokens = sum(r["tokens"] for r in sent)
    print(
        f"\n{len(sent)} of {len(rows)} images can be sent: {before:,} bytes become {after:,}; "
        f"{tokens:,} image tokens in all."
    )


def _cmd_images(args: argparse.Namespace) -> int:
    paths = _images_in(args.paths)
    if not paths:
        print("No images found.", file=sys.stderr)
        return 1
    rows = [_report(path, args.detail) for path in paths]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows, args.detail)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afarensis-vision", description="Afarensis GPT-4 with Vision from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("demo", "prepare the images in a folder and show what would be sent"),
        ("tokens", "estimate the token cost of images, offline"),
    ]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER")
        command.add_argument("--detail", choices=DETAILS, default="auto")
        command.add_argument("--json", action="store_true", help="print JSON")
        command.set_defaults(run=_cmd_images)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line."""
    args = _parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
