"""The images of a request, read in three steps so that nothing costly happens before it must.

1. Inline (``data:``) images: their bytes and their headers (:func:`~._images.head`: format,
   size, animation, estimated decoded size: the refusals that need no pixel), in worker
   threads. URL images count the fewest tokens an image can cost at their detail. Then
   ``admit(image_tokens, exact)``: the context window is checked before any download or decode
   (``exact`` is False while URL images count at their least).
2. URL images: downloaded (:class:`~._downloads.Downloader`, a few at once), their headers read
   as they arrive; the bytes downloaded for one request are at most
   :data:`~.settings.MAX_REQUEST_IMAGE_BYTES`. Then ``admit`` again, with the exact count.
3. Every image is decoded (:func:`~._images.decode`, to find broken data) in a worker thread,
   what its decode takes (estimated from its header) reserved from the shared image budget
   around the decode, waiting for it, in the worker thread (no task holds that budget while it
   waits for a thread). An image that would take more than the whole budget is not decoded: it
   is answered from its header (``ImageInfo.examined`` False).

The first refusal, in request order within a step, is raised as an :class:`~._errors.APIError`;
a refused download cancels the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio

from langchain_afarensis_vision._api.contract import is_data_url
from langchain_afarensis_vision._sources import read
from langchain_afarensis_vision._sources.budget import MemoryBudget
from langchain_afarensis_vision.server._downloads import Downloader
from langchain_afarensis_vision.server._errors import APIError, image_error
from langchain_afarensis_vision.server._images import (
    HeadedImage,
    ImageRef,
    SeenImage,
    decode,
    head,
    inline_bytes,
    least_tokens,
)
from langchain_afarensis_vision.server._work import Work
from langchain_afarensis_vision.server.settings import MAX_REQUEST_IMAGE_BYTES


async def read_images(
    refs: Sequence[ImageRef],
    work: Work,
    downloader: Downloader,
    admit: Callable[[int, bool], None],
) -> list[SeenImage]:
    """Read, check and price every image of a request, in order (see the module)."""
    headed: dict[int, HeadedImage] = {}
    limit = work.images.limit
    for index, ref in enumerate(refs):
        if is_data_url(ref.url):
            headed[index] = await work.run(_head_inline, ref, limit)
    remote = [index for index in range(len(refs)) if index not in headed]
    admit(_tokens(refs, headed), not remote)
    if remote:
        headed |= await _download_all(refs, remote, work, downloader)
        admit(_tokens(refs, headed), True)
    return [await work.run(_decode_within, work.images, headed[i], limit) for i in range(len(refs))]


def _decode_within(budget: MemoryBudget, image: HeadedImage, limit: int) -> SeenImage:
    """Decode ``image`` holding what its decode takes, reserved here, in the worker thread.

    A task that held the budget while it waited for a thread could wait for ever on threads
    that the engine holds while they wait for the budget. An image already checked, or not to
    be examined, reserves nothing.
    """
    checked = image.known or not image.seen.info.examined
    with budget.reserve(0 if checked else image.seen.header.decoded):
        return decode(image, limit)


def _head_inline(ref: ImageRef, limit: int) -> HeadedImage:
    return head(ref, inline_bytes(ref), True, limit)


def _tokens(refs: Sequence[ImageRef], headed: dict[int, HeadedImage]) -> int:
    """Image tokens: exact for the images read, the least possible for the others."""
    return sum(
        headed[i].seen.tokens if i in headed else least_tokens(ref.detail)
        for i, ref in enumerate(refs)
    )


async def _download_all(
    refs: Sequence[ImageRef], indices: list[int], work: Work, downloader: Downloader
) -> dict[int, HeadedImage]:
    """Download and head the URL images at ``indices``; the first refusal cancels the rest."""
    headed: dict[int, HeadedImage] = {}
    refused: dict[int, APIError] = {}
    total = 0

    async with downloader.session() as fetch, anyio.create_task_group() as group:

        async def one(index: int) -> None:
            nonlocal total
            ref = refs[index]
            try:
                data = await fetch(ref)
                total += len(data)
                if total > MAX_REQUEST_IMAGE_BYTES:
                    raise _too_much(ref)
                headed[index] = await work.run(head, ref, data, False, work.images.limit)
            except APIError as error:
                refused[index] = error
                group.cancel_scope.cancel()

        for index in indices:
            group.start_soon(one, index)
    if refused:
        raise refused[min(refused)]
    return headed


def _too_much(ref: ImageRef) -> APIError:
    message = (
        f"The images of this request take more than {MAX_REQUEST_IMAGE_BYTES:,} bytes in all "
        f"(the image at {ref.param} passed that)."
    )
    return image_error(read.too_large(message), ref.param, prefix=False)
