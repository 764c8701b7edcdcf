"""Describe image datasets on a Ray cluster, under one rate limit for the whole cluster.

Needs the ``ray`` extra (``ray[data]``): ``pip install ".[ray]"`` in a clone of the repository.

:func:`describe_dataset` takes a ``ray.data.Dataset`` of images and returns one with the
corpus job's record fields added as columns. It runs in two stages on Ray itself: the images
are prepared by CPU tasks spread over every node's cores (bytes in, the prepared bytes out, each
image decoded once), then asked about by a pool of request actors, each keeping many requests
in flight, all charging one :class:`RateBudget` (an actor holding the package's limiter).

Example:
    ```python
    import ray
    from langchain_afarensis_vision.ray import describe_dataset

    ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    described = describe_dataset(ds, detail="low", tokens_per_minute=200_000)
    described.write_parquet("s3://bucket/captions/")
    ```
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, cast

from langchain_afarensis_vision._api.contract import Detail
from langchain_afarensis_vision.chat_models import ChatAfarensis
from langchain_afarensis_vision.chat_models._messages import DEFAULT_QUESTION
from langchain_afarensis_vision.errors import checked_detail

INSTALL_HINT = 'pip install ".[ray]" in a clone of langchain-afarensis-vision'

try:
    import pyarrow  # noqa: F401
    import ray
except ImportError as exc:  # exercised without the extra (test_imports)
    msg = f"Describing datasets on Ray needs the 'ray' extra: {INSTALL_HINT} ({exc})"
    raise ImportError(msg) from exc

from langchain_afarensis_vision.ray._budget import start_budget  # noqa: E402
from langchain_afarensis_vision.ray._stages import (  # noqa: E402
    Describe,
    Request,
    Secrets,
    done_keys,
)
from langchain_afarensis_vision.ray._stages import prepare_batch as _prepare_batch  # noqa: E402

if TYPE_CHECKING:
    from ray.data import Dataset

__all__ = ["RateBudget", "describe_dataset"]

_SETTINGS = (
    "model",
    "base_url",
    "temperature",
    "stop",
    "timeout",
    "max_retries",
    "max_retry_after",
    "image_first_frame",
    "model_kwargs",
    "default_headers",
)


class RateBudget:
    """One requests- and tokens-per-minute budget for every request actor of a cluster.

    Its state (the package's :class:`~.._ratelimit.AfarensisRateLimiter`) lives in one Ray
    actor: limits given here cap what it learns from the API's headers, and a 429 anywhere
    pauses every actor until its ``Retry-After``. Share one between several
    :func:`describe_dataset` calls that use the same key.

    Args:
        requests_per_minute: A cap on requests (None: learned from the API).
        tokens_per_minute: A cap on tokens (None: learned from the API).
    """

    def __init__(
        self, requests_per_minute: int | None = None, tokens_per_minute: int | None = None
    ) -> None:
        self.actor = start_budget(requests_per_minute, tokens_per_minute)

    def stats(self) -> dict[str, Any]:
        """What the budget saw: ``rate_limited`` (429s), the limits in force, asks, calls."""
        return cast(dict[str, Any], ray.get(self.actor.stats.remote()))


def describe_dataset(
    ds: Dataset,
    *,
    image_column: str | None = None,
    question: str = DEFAULT_QUESTION,
    detail: Detail = "auto",
    llm: ChatAfarensis | None = None,
    max_tokens: int = 300,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    budget: RateBudget | None = None,
    actors: int | tuple[int, int] = (1, 4),
    in_flight: int = 16,
    batch_size: int = 32,
    done: Dataset | None = None,
    keep_image: bool = False,
) -> Dataset:
    """A dataset with each image's description (lazy: it runs when written or read).

    Args:
        ds: Rows with an image: ``bytes`` (``read_binary_files``), a decoded array
            (``read_images``), or a string column of ``http(s)`` or ``data:`` URLs.
        image_column: Its column (None: ``bytes``, ``image``, ``url`` or the only column,
            found in each batch as it runs, so that the dataset is read once).
        question: Asked about each image.
        detail: ``low``, ``high`` or ``auto``.
        llm: The model's settings (``ChatAfarensis()`` if None: key and URL from the
            environment); the key reaches the actors through Ray's object store, never in
            task arguments (a local ``ray.init()`` copies the driver's environment, a key in
            ``AFARENSIS_API_KEY`` included, into every Ray process: start Ray without it).
        max_tokens: Most tokens each answer may take.
        requests_per_minute: A cap on requests for the whole cluster (None: learned).
        tokens_per_minute: A cap on tokens for the whole cluster (None: learned).
        budget: A :class:`RateBudget` to share (one is made from the caps if None).
        actors: Request actors (CPU-less processes): a number, or ``(least, most)`` for a
            pool Ray grows while rows wait.
        in_flight: Requests each actor keeps going at once.
        batch_size: Rows per batch in both stages.
        done: A previous output: rows it already holds (described, or refused for good) are
            skipped, by content digest and request; write the result next to it.
        keep_image: Keep the input bytes or array column (dropped by default; URL columns
            are always kept); one named like a fact (``bytes``) is kept as ``input_bytes``.

    Returns:
        The rows not already ``done``, with ``sha256``, ``key``, the image's facts
        (:data:`~..images.FACTS`: ``format``, ``width``, ``bytes``, ``image_tokens``...),
        ``description``, ``prompt_tokens``, ``completion_tokens``, ``model`` and ``error``
        (null, or ``{type, code, message}``).
    """
    model = llm or ChatAfarensis()
    request = Request(
        question, checked_detail(detail), model.model, max_tokens, model.image_first_frame
    )
    shared = budget or RateBudget(requests_per_minute, tokens_per_minute)
    settings = {name: getattr(model, name) for name in _SETTINGS}
    secrets = [ray.put(Secrets(settings, model.api_key))]  # a list: the actors fetch it
    finished = ray.put(done_keys(done)) if done is not None else None
    prepare = functools.partial(
        _prepare_batch, column=image_column, request=request, done=finished, keep_image=keep_image
    )
    prepared = ds.map_batches(prepare, batch_format="pyarrow", batch_size=batch_size)
    return prepared.map_batches(
        Describe,
        batch_format="pyarrow",
        batch_size=batch_size,
        fn_constructor_kwargs={
            "secrets": secrets,
            "budget": shared.actor,
            "request": request,
            "column": image_column,  # None: each batch finds it (ds is read once)
            "in_flight": in_flight,
        },
        compute=_pool(actors),
        num_cpus=0,  # the actors wait on the network; the cores are for preparing
    )


def _pool(actors: int | tuple[int, int]) -> Any:
    least, most = (actors, actors) if isinstance(actors, int) else actors
    if not 1 <= least <= most:
        msg = f"actors must be a number or (least, most) with 1 <= least <= most; got {actors}"
        raise ValueError(msg)
    return ray.data.ActorPoolStrategy(min_size=least, max_size=most)
