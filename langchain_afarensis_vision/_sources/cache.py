"""One small, thread-safe, bounded LRU map: every cache in the package is one of these.

Bounded by a count of entries and, optionally, by a total weight (e.g. bytes held), so a cache
of images never holds more memory than it says, however large the images are.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``max_entries`` values (and at most ``max_weight`` in all), least recent evicted.

    Args:
        max_entries: Most values kept.
        max_weight: Most total ``weight(value)`` kept (None: no weight bound).
        weight: The weight of a value (default: 1 each).
    """

    def __init__(
        self,
        max_entries: int,
        max_weight: int | None = None,
        weight: Callable[[V], int] = lambda _: 1,
    ) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._weight_of = weight
        self._weight = 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now the most recent), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``, evicting the least recent values beyond the bounds."""
        with self._lock:
            if (old := self._items.pop(key, None)) is not None:
                self._weight -= self._weight_of(old)
            self._items[key] = value
            self._weight += self._weight_of(value)
            while len(self._items) > self.max_entries or (
                self.max_weight is not None and self._weight > self.max_weight
            ):
                self._weight -= self._weight_of(self._items.popitem(last=False)[1])

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The cached value for ``key``, or ``make()``'s, kept (a raising ``make`` keeps nothing).

        ``make`` runs outside the lock: two threads missing the same key may both make it.
        """
        value = self.get(key)
        if value is None:
            value = make()
            self.put(key, value)
        return value

    def clear(self) -> None:
        """Forget every value."""
        with self._lock:
            self._items.clear()
            self._weight = 0

    def __len__(self) -> int:
        return len(self._items)
