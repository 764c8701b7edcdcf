"""What a corpus run did, or (a dry run) would do: :class:`CorpusSummary`."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CorpusSummary", "duration", "estimate_seconds"]


@dataclass
class CorpusSummary:
    """What a run did (or, for a dry run, would do).

    One word for one thing, in the fields and in :meth:`line`: *refused* is an image the
    client refuses (its line is kept, and a later run counts it among those *already done*,
    "of them refused", without retrying it); *failed* is an image that could not be read or
    was not answered (its line is dropped and the next run tries it again).
    """

    sources: int = 0
    described: int = 0  # lines with a description written (sent or copied)
    sent: int = 0  # requests answered
    skipped: int = 0  # already in ``out``
    refused_earlier: int = 0  # of those, images refused for good by an earlier run
    duplicates: int = 0  # identical to an image sent (or to be sent) once
    refused: int = 0  # refused for good: the client would refuse it again (not retried)
    failed: int = 0  # unread or unanswered: tried again by the next run
    prompt_tokens: int = 0
    completion_tokens: int = 0
    image_tokens: int = 0  # of the images sent (dry run: to send)
    max_billable: int = 0  # dry run: prompt + max_tokens of every request to send
    urls_at_upper_bound: int = 0  # dry run: URL images counted at the most they can cost
    rate_limited: int = 0  # 429 answers seen
    tokens_last_minute: int = 0  # billed in the last 60 s (for progress: what a limit sees)
    seconds: float = 0.0
    estimated_seconds: float | None = None  # dry run: what the rate limits imply
    stopped: str | None = None  # why the run stopped early (the token budget)
    dry_run: bool = False
    # The output's token budget, over all its runs: answers at their usage, requests that got no
    # answer at their estimate (the API may have billed them).
    charged: int = 0  # charged to the output so far (this run's included)
    charged_before: int = 0  # of them, by its earlier runs
    budget_tokens: int | None = None  # the cap on ``charged``

    @property
    def billed(self) -> int:
        """Tokens billed, as the answers report them."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def exit_code(self) -> int:
        """0 when every image was described (or a dry run), else 1."""
        undescribed = self.failed or self.refused or self.refused_earlier
        undescribed = undescribed or self.stopped is not None
        return 0 if self.dry_run or not undescribed else 1

    def line(self) -> str:
        """One line for the end of a run."""
        if self.dry_run:
            when = duration(self.estimated_seconds)
            urls = f" ({self.urls_at_upper_bound} URLs at the upper bound)"
            return (
                f"Dry run: {self.sources} images, {self.skipped} already done"
                f"{self._refused()}, {self.duplicates} duplicates, {self.refused} refused, "
                f"{self.failed} failed; {self.to_send} to send: "
                f"{self.image_tokens:,} image tokens{urls if self.urls_at_upper_bound else ''}, "
                f"at most {self.max_billable:,} tokens billed; rate limit time: {when}"
                f"{self._charged(self.charged_before, 'already charged')}."
            )
        return (
            f"{self.described} described ({self.sent} sent, {self.duplicates} duplicates), "
            f"{self.skipped} already done{self._refused()}, {self.refused} refused, "
            f"{self.failed} failed of {self.sources} images; "
            f"{self.billed:,} tokens billed, {self.rate_limited} 429s, in {self.seconds:.1f} s"
            f"{self._charged(self.charged, 'charged')}."
        )

    def _charged(self, charged: int, what: str) -> str:
        """The budget's part of :meth:`line`: said when there is one, or earlier runs charged."""
        if self.budget_tokens is None and not self.charged_before:
            return ""
        said = f"; {charged:,} tokens {what} to this output over all its runs"
        if self.budget_tokens is None:
            return said
        left = max(0, self.budget_tokens - charged)
        return f"{said}, {left:,} of --budget-tokens {self.budget_tokens:,} left"

    def _refused(self) -> str:
        if not self.refused_earlier:
            return ""
        return f" ({self.refused_earlier} of them refused, not retried)"

    @property
    def to_send(self) -> int:
        """Dry run: the requests the run would make."""
        return self.sources - self.skipped - self.duplicates - self.refused - self.failed


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no --rpm/--tpm given; learned from the API at run time)"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def estimate_seconds(summary: CorpusSummary, rpm: int | None, tpm: int | None) -> float | None:
    """Seconds the rate limits imply for the requests a dry run counted.

    Both limits are over a sliding minute, as the API and the limiter count them: a minute's
    worth goes at once, the next when the first has left the window, and so on. So ``k``
    minutes' worth takes ``k - 1`` minutes (plus the answers' own time, which a dry run cannot
    know); a run within one minute's worth is not slowed at all.
    """
    minutes = [
        max(0, math.ceil(amount / limit) - 1)
        for amount, limit in ((summary.to_send, rpm), (summary.max_billable, tpm))
        if limit is not None
    ]
    return max(minutes) * 60.0 if minutes else None
