"""What an index run did, or (a dry run) would do: :class:`IndexSummary`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from langchain_afarensis_vision.corpus import CorpusSummary

__all__ = ["IndexSummary"]


@dataclass
class IndexSummary:
    """What an ``add`` did (or, a dry run, would do)."""

    files: int = 0  # documents found
    unchanged: int = 0  # skipped: the same as when indexed
    indexed: int = 0  # new or changed, read again
    removed: int = 0  # gone from a folder given again: dropped from the index
    pages: int = 0  # pages in the index after the run
    rendered: int = 0  # pages rendered this run
    described: int = 0  # page descriptions added this run
    failed: list[dict[str, Any]] = field(default_factory=list)  # {file, page, message}
    corpus: CorpusSummary | None = None  # the describe step's own summary
    dry_run: bool = False

    @property
    def requests(self) -> int:
        """Requests answered by the model this run."""
        return self.corpus.sent if self.corpus is not None else 0

    @property
    def exit_code(self) -> int:
        """0 when every page is indexed and described, else 1."""
        described = self.corpus is None or self.corpus.exit_code == 0
        return 0 if described and not self.failed else 1

    def line(self) -> str:
        """One line for the end of a run (and the describe step's own line, when it ran)."""
        text = (
            f"{self.files} documents: {self.indexed} indexed, {self.unchanged} unchanged, "
            f"{self.removed} removed, {len(self.failed)} failed; {self.rendered} pages rendered, "
            f"{self.described} described, {self.pages} pages in the index"
        )
        if self.dry_run:
            text = f"Dry run (the index is unchanged): {text}"
        return text if self.corpus is None else f"{text}\n{self.corpus.line()}"

    def to_dict(self) -> dict[str, Any]:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        corpus = self.corpus
        fields["corpus"] = dataclasses.asdict(corpus) if corpus is not None else None
        return fields | {"requests": self.requests}
