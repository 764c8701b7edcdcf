"""The corpus job's token budget: real money, counted per request sent, over every run.

:class:`TokenBudget` sends a request the way the model's own retries would, but charges each
attempt before it goes: its estimate (prompt tokens + ``max_tokens``, the most it can bill) is
counted and saved to the output's state (``<out>.state``, :mod:`.corpus._state`) before the
request is sent, then corrected to the answer's ``usage`` when it comes. An error answer (a 4xx or
5xx status) or a request refused before sending bills nothing and is refunded; one that got no
answer (a timeout, a dropped connection) stays charged at its estimate, since the API may have
billed it. So what the API bills never passes the count, and the count carries over: a run goes on
from what the output's earlier runs charged, and ``budget_tokens`` caps the whole job. A request
that would take the count past the cap is not sent: the run stops, saying why.
"""

from __future__ import annotations

import asyncio
import itertools

from langchain_core.messages import AIMessage, HumanMessage

from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._transport import RetryPolicy
from langchain_afarensis_vision.corpus._store import ResultStore
from langchain_afarensis_vision.corpus._summary import CorpusSummary
from langchain_afarensis_vision.errors import (
    EVERY_REQUEST_FAILS,
    AfarensisError,
    APIConnectionError,
)

__all__ = ["TokenBudget"]


class TokenBudget:
    """The output's charged tokens (``summary.charged``) against ``cap``, saved as they change.

    Args:
        summary: The run's summary: its ``charged`` is the running count.
        store: The output (``charged``: what earlier runs charged; ``state``: where it is saved).
        cap: The most tokens to charge over the whole job (None: counted, never stopped).
        retries: Attempts after the first for a request that failed in a retryable way.
    """

    def __init__(
        self, summary: CorpusSummary, store: ResultStore, cap: int | None, retries: int
    ) -> None:
        self.summary, self.store, self.cap = summary, store, cap
        summary.budget_tokens = cap
        summary.charged_before = summary.charged = store.charged
        self.retries = RetryPolicy(max_retries=retries)
        self._saving = asyncio.Lock()

    async def ask(
        self, llm: ChatAfarensis, message: HumanMessage, cost: int
    ) -> AIMessage | AfarensisError | OSError | None:
        """Send ``message`` (retried as ``llm`` would), each attempt charged ``cost`` first.

        Returns the answer, or the last attempt's error, or None when the budget stopped the
        first attempt (nothing was sent). Errors every request would meet are raised.
        """
        error: AfarensisError | OSError | None = None
        for attempt in itertools.count():  # pragma: no branch - it ends by returning
            if not await self._take(cost):
                return error
            try:
                reply = await llm.ainvoke([message])
            except EVERY_REQUEST_FAILS:
                await self._settle(cost, 0)  # answered (401, 404...) or never sent
                raise
            except (AfarensisError, OSError) as failure:
                error = failure
                if not isinstance(failure, APIConnectionError | OSError):
                    await self._settle(cost, 0)  # answered with an error, or refused unsent
                if isinstance(failure, OSError):
                    return failure
                if (delay := self.retries.delay(attempt, failure)) is None:
                    return failure
                await asyncio.sleep(delay)
            else:
                usage = reply.usage_metadata  # None: not said, so the estimate stays
                billed = cost if usage is None else usage["input_tokens"] + usage["output_tokens"]
                await self._settle(cost, billed)
                return reply
        raise AssertionError("unreachable")  # pragma: no cover

    async def _take(self, cost: int) -> bool:
        """Charge ``cost`` and save it before the request goes, or stop the run if it won't fit."""
        summary = self.summary
        if self.cap is not None and summary.charged + cost > self.cap:
            summary.stopped = summary.stopped or (
                f"Stopped before the token budget: {summary.charged:,} tokens charged to this "
                f"output so far (answers at their usage; requests that got no answer at their "
                f"estimate, as the API may have billed them); the next request may cost "
                f"{cost:,} more, past --budget-tokens {self.cap:,}. Run again with a larger "
                "budget to go on."
            )
            return False
        summary.charged += cost
        await self._save()
        return True

    async def _settle(self, cost: int, billed: int) -> None:
        self.summary.charged += billed - cost
        await self._save()

    async def _save(self) -> None:
        """Write the count as it is now (saves go one at a time, so the last one holds)."""
        async with self._saving:
            charged = self.summary.charged
            await asyncio.to_thread(self.store.state.save, charged_tokens=charged)
