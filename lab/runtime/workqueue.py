"""A de-duplicating work queue: controllers enqueue keys on events and one worker reconciles them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
K = TypeVar("K")


class WorkQueue(Generic[K]):
    """Keys waiting for reconciliation; a key added twice before it is processed runs once."""

    def __init__(self, name: str, min_interval: float = 0.0) -> None:
        self.name = name
        self.min_interval = min_interval
        self._last: dict[K, float] = {}
        self._delayed: set[K] = set()
        self._pending: dict[K, None] = {}
        self._active: set[K] = set()
        self._wake = asyncio.Event()

    def add(self, key: K) -> None:
        """Ask for key to be reconciled (no sooner than min_interval after its last reconcile)."""
        if self.min_interval and key not in self._pending:
            if key in self._delayed:
                return
            last = self._last.get(key)
            wait = 0.0 if last is None else self.min_interval - (time.monotonic() - last)
            if wait > 0:
                self._delayed.add(key)
                asyncio.get_running_loop().call_later(wait, self._release, key)
                return
        self._pending[key] = None
        self._wake.set()

    def _release(self, key: K) -> None:
        self._delayed.discard(key)
        self._pending[key] = None
        self._wake.set()

    def add_later(self, key: K, delay: float) -> None:
        """Ask for key to be reconciled after delay seconds."""
        asyncio.get_running_loop().call_later(delay, self.add, key)

    def __len__(self) -> int:
        return len(self._pending)

    async def run(
        self, reconcile: Callable[[K], Awaitable[None]], retry_s: float = 1.0, workers: int = 1
    ) -> None:
        """Reconcile keys forever with N workers; a key is never reconciled twice at once."""
        await asyncio.gather(*(self._worker(reconcile, retry_s) for _ in range(workers)))

    def _next(self) -> K | None:
        for key in self._pending:
            if key not in self._active:
                del self._pending[key]
                return key
        return None

    async def _worker(self, reconcile: Callable[[K], Awaitable[None]], retry_s: float) -> None:
        while True:
            key = self._next()
            if key is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._active.add(key)
            if self.min_interval:
                self._last[key] = time.monotonic()
            try:
                await reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001
                log.info("%s: reconcile %s failed: %r; retrying", self.name, key, err)
                self.add_later(key, retry_s)
            finally:
                self._active.discard(key)
                if key in self._pending:
                    self._wake.set()
            await asyncio.sleep(0)
