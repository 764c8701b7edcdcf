"""The page index's database: one SQLite file (``index.sqlite``) in the index directory.

Tables: ``files`` (each document as indexed: its name relative to the folder given, where it
was, its size, time and SHA-256), ``pages`` (one row a page: number, count, the page image's
digest and file, the text layer), ``descriptions`` (the model's reading of a page image, by the
corpus key: page digest, prompt, model, detail, max tokens) and ``search``, an FTS5 table over
each page's text layer and the lines of its description the text layer does not hold, ranked by
FTS5's ``bm25()``.

Write-ahead logging: a search reads a consistent index while an ``add`` writes it. A file's new
pages are written as ``new`` rows while it renders and replace its live rows in one transaction
at its end, so a reader (or a run killed half way) never sees half a file.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from langchain_afarensis_vision.documents._terms import fold, match_query, novel_lines

__all__ = ["FileRow", "PageHit", "PageRow", "Store"]

DATABASE: Final = "index.sqlite"
SCHEMA_VERSION: Final = "1"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    file TEXT PRIMARY KEY, root TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, page_count INTEGER NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS pages (
    id INTEGER PRIMARY KEY, file TEXT NOT NULL, page INTEGER NOT NULL,
    page_count INTEGER NOT NULL, sha256 TEXT, image TEXT, width INTEGER, height INTEGER,
    has_text_layer INTEGER NOT NULL, text TEXT NOT NULL, error TEXT,
    live INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS pages_by_file ON pages (file, live, page);
CREATE INDEX IF NOT EXISTS pages_by_digest ON pages (sha256);
CREATE TABLE IF NOT EXISTS descriptions (
    key TEXT PRIMARY KEY, sha256 TEXT NOT NULL, description TEXT NOT NULL, model TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER
);
CREATE VIEW IF NOT EXISTS live AS SELECT
    id, file, page, page_count, sha256, image, width, height, has_text_layer, text, error
    FROM pages WHERE live = 1;
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5 (
    body, seen, tokenize = 'porter unicode61 remove_diacritics 2'
);
"""


@dataclass(frozen=True, slots=True)
class FileRow:
    """A document as indexed."""

    file: str
    root: str
    path: str
    size: int
    mtime_ns: int
    sha256: str
    page_count: int
    error: str | None


@dataclass(frozen=True, slots=True)
class PageRow:
    """A page as indexed, with its description (None: not described yet) and search score."""

    id: int
    file: str
    page: int
    page_count: int
    sha256: str | None
    image: str | None
    width: int
    height: int
    has_text_layer: bool
    text: str
    error: str | None
    description: str | None = None
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class PageHit:
    """A page found by a search: where it is, how well it matched, and what it holds.

    ``file`` is the path as indexed (relative to the folder given to ``add``), ``page`` is
    1-based (an image file is page 1); ``image`` is the page image the model reads (a file in
    the index's ``pages/`` folder); ``description`` is the model's reading of it (None: not
    described yet).
    """

    file: str
    page: int
    page_count: int
    score: float
    sha256: str | None
    image: Path | None
    text: str
    description: str | None
    has_text_layer: bool

    def citation(self) -> dict[str, Any]:
        return {"file": self.file, "page": self.page}


class Store:
    """The index database; one connection, used by one thread at a time (a lock guards it)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / DATABASE
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 30000")  # another writer: wait, not fail
        self._db.executescript(_SCHEMA)
        found = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif found[0] != SCHEMA_VERSION:
            msg = (
                f"{self.path} is an index of schema {found[0]}; this version reads {SCHEMA_VERSION}"
            )
            raise ValueError(msg)

    def settings(self) -> dict[str, str]:
        """What the index was built with (``model``, ``prompt``, ``max_tokens``)."""
        rows = self._rows("SELECT key, value FROM meta WHERE key LIKE 'setting.%'")
        return {key.removeprefix("setting."): value for key, value in rows}

    def keep_settings(self, settings: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                ((f"setting.{key}", value) for key, value in settings.items()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all of it lands, or none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # -- files ----------------------------------------------------------------------------------

    def files(self, root: str | None = None) -> dict[str, FileRow]:
        if root is None:
            rows = self._rows("SELECT * FROM files")
        else:
            rows = self._rows("SELECT * FROM files WHERE root = ?", (root,))
        return {row[0]: FileRow(*row) for row in rows}

    def touch(self, row: FileRow) -> None:
        """Record a file's new size and time (its content is unchanged)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET size = ?, mtime_ns = ?, root = ?, path = ? WHERE file = ?",
                (row.size, row.mtime_ns, row.root, row.path, row.file),
            )

    def remove(self, files: Iterable[str]) -> int:
        """Forget ``files`` and their pages; how many were known."""
        removed = 0
        with self.transaction() as db:
            for file in files:
                self._drop_pages(db, file, live=1)
                removed += db.execute("DELETE FROM files WHERE file = ?", (file,)).rowcount
        return removed

    # -- pages ----------------------------------------------------------------------------------

    def discard_unfinished(self) -> None:
        """Drop pages of a file whose rendering never finished (a run killed half way)."""
        with self.transaction() as db:
            db.execute("DELETE FROM pages WHERE live = 0")

    def stage(self, file: str, pages: Iterable[tuple[Any, ...]]) -> None:
        """Write some of ``file``'s new pages (not yet seen by searches)."""
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO pages (file, page, page_count, sha256, image, width, height, "
                "has_text_layer, text, error, live) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                ((file, *page) for page in pages),
            )

    def publish(self, row: FileRow, key_of: Any) -> None:
        """Make ``row``'s staged pages its live ones, searchable, in one transaction."""
        with self.transaction() as db:
            self._drop_pages(db, row.file, live=1)
            db.execute("UPDATE pages SET live = 1 WHERE file = ? AND live = 0", (row.file,))
            db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _row(row))
            staged = db.execute("SELECT * FROM live WHERE file = ?", (row.file,)).fetchall()
            for page in staged:
                self._search_row(db, PageRow(*page), key_of)

    def record_failure(self, row: FileRow) -> None:
        """Remember a file that could not be read at all (its old pages are dropped)."""
        with self.transaction() as db:
            self._drop_pages(db, row.file, live=1)
            db.execute("DELETE FROM pages WHERE file = ? AND live = 0", (row.file,))
            db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _row(row))

    def _drop_pages(self, db: sqlite3.Connection, file: str, live: int) -> None:
        ids = db.execute("SELECT id FROM pages WHERE file = ? AND live = ?", (file, live))
        db.executemany("DELETE FROM search WHERE rowid = ?", ids.fetchall())
        db.execute("DELETE FROM pages WHERE file = ? AND live = ?", (file, live))

    def _search_row(self, db: sqlite3.Connection, page: PageRow, key_of: Any) -> None:
        description = ""
        if page.sha256 is not None:
            found = db.execute(
                "SELECT description FROM descriptions WHERE key = ?", (key_of(page.sha256),)
            ).fetchone()
            description = found[0] if found else ""
        seen = novel_lines(description, page.text)
        db.execute("DELETE FROM search WHERE rowid = ?", (page.id,))
        db.execute(
            "INSERT INTO search (rowid, body, seen) VALUES (?, ?, ?)",
            (page.id, fold(page.text), fold(seen)),
        )

    def undescribed(self, key_of: Any) -> list[PageRow]:
        """Live pages whose image has no description for the current request, one a digest."""
        rows = self._rows(
            "SELECT * FROM live WHERE sha256 IS NOT NULL GROUP BY sha256 ORDER BY file, page"
        )
        described = {row[0] for row in self._rows("SELECT key FROM descriptions")}
        return [PageRow(*row) for row in rows if key_of(row[4]) not in described]

    def add_descriptions(self, records: Iterable[dict[str, Any]], key_of: Any) -> int:
        """Store the corpus job's described records; re-index the pages they describe."""
        added: set[str] = set()
        with self.transaction() as db:
            for record in records:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO descriptions VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record["key"],
                        record["sha256"],
                        record["description"],
                        record.get("model"),
                        record.get("prompt_tokens"),
                        record.get("completion_tokens"),
                    ),
                )
                if cursor.rowcount:
                    added.add(record["sha256"])
            for sha256 in added:
                pages = db.execute("SELECT * FROM live WHERE sha256 = ?", (sha256,)).fetchall()
                for page in pages:
                    self._search_row(db, PageRow(*page), key_of)
        return len(added)

    def pages(self, key_of: Any, file: str | None = None) -> list[PageRow]:
        """Every live page (of ``file``), in order, with its description."""
        if file is None:
            found = self._rows("SELECT * FROM live ORDER BY file, page")
        else:
            found = self._rows("SELECT * FROM live WHERE file = ? ORDER BY page", (file,))
        rows = [PageRow(*row) for row in found]
        return [self._described(row, key_of) for row in rows]

    def count(self) -> int:
        return int(self._rows("SELECT count(*) FROM pages WHERE live = 1")[0][0])

    def search(self, query: str, limit: int, key_of: Any) -> list[PageRow]:
        """The live pages best matching ``query`` (FTS5 ``bm25()``), best first."""
        expression = match_query(query)
        if expression is None:
            return []
        rows = self._rows(
            "SELECT live.*, -bm25(search) FROM search JOIN live ON live.id = search.rowid "
            "WHERE search MATCH ? ORDER BY bm25(search) LIMIT ?",
            (expression, limit),
        )
        found = (dataclasses.replace(PageRow(*row[:-1]), score=row[-1]) for row in rows)
        return [self._described(row, key_of) for row in found]

    def _described(self, page: PageRow, key_of: Any) -> PageRow:
        if page.sha256 is None:
            return page
        found = self._rows(
            "SELECT description FROM descriptions WHERE key = ?", (key_of(page.sha256),)
        )
        if not found:
            return page
        return dataclasses.replace(page, description=found[0][0])


def _row(row: FileRow) -> tuple[Any, ...]:
    return (
        row.file,
        row.root,
        row.path,
        row.size,
        row.mtime_ns,
        row.sha256,
        row.page_count,
        row.error,
    )
