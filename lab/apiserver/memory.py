"""The API server's memory and restarts: expensive LISTs exhaust its heap, it is OOM-killed and comes back.

APF bounds how many requests run at once (a LIST costs at most 10 seats), not how much memory they take:
a cluster-wide LIST materialises every object it returns, several times over (the bytes read from
storage, the decoded objects, the converted copies, the encoded response). That is how the 2024-12-11
telemetry storm took the API servers down although APF was on. The model:

* **heap** = the bytes held by executing LISTs + garbage. A LIST is charged, when APF admits it,
  ``objects x mean object size x amplification``; when it ends its charge becomes garbage, which decays
  with time constant ``gc_seconds`` (a Go heap that is collected every so often). So the heap tracks
  "LIST bytes per second x GC interval" and only a sustained storm of big LISTs fills it.
* past ``limit`` (0: unlimited, the default) the server is **OOM-killed**: every connection and watch
  is cut and it listens again after a CrashLoopBackOff-style delay (doubling up to a cap, reset after a
  quiet stretch). The store survives (it stands for etcd).
* after each restart the **watch cache re-initialises** for ``cache_init_seconds``: like kube-apiserver
  with ResilientWatchCacheInitialization, requests the cache would serve (WATCH, and LIST with a
  ``resourceVersion``, which client-go reflectors send) get ``429`` + ``Retry-After: 1``; quorum LISTs
  (no ``resourceVersion``), GETs and writes go to storage and are served. While a storm keeps
  re-killing the server within that time, informer-based clients (CoreDNS) cannot sync.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import islice

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from lab.apiserver.store import Table

_encode = msgspec.json.Encoder().encode
SAMPLE = 16  # objects encoded to estimate a table's mean object size


@dataclass
class _SizeCache:
    count: int = -1
    mean: float = 0.0


@dataclass
class Charge:
    """The bytes one executing LIST holds."""

    nbytes: float
    epoch: int = 0
    released: bool = False


class HeapModel:
    """Estimated heap: executing LISTs plus decaying garbage; calls ``on_oom`` past the limit."""

    def __init__(self, limit: int, amplification: float = 8.0, gc_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.amplification = amplification
        self.gc_seconds = gc_seconds
        self.clock = clock
        self.live = 0.0
        self._garbage = 0.0
        self._at = clock()
        self._sizes: dict[str, _SizeCache] = {}
        self.epoch = 0
        self.on_oom: Callable[[], None] | None = None

    def mean_size(self, table: Table) -> float:
        """Mean encoded size of a table's objects (sampled; resampled when the count moves by a fifth)."""
        cache = self._sizes.setdefault(table.resource.key, _SizeCache())
        if cache.count < 0 or abs(table.count - cache.count) > max(8, cache.count // 5):
            sample = list(islice(table.iter_sorted(None), SAMPLE)) if table.count else []
            cache.mean = sum(len(_encode(o)) for o in sample) / len(sample) if sample else 0.0
            cache.count = table.count
        return cache.mean

    def garbage(self) -> float:
        """Garbage left now, after decay since the last look."""
        now = self.clock()
        if now > self._at:
            self._garbage *= math.exp(-(now - self._at) / self.gc_seconds)
            self._at = now
        return self._garbage

    def used(self) -> float:
        """The heap estimate in bytes."""
        return self.live + self.garbage()

    def charge(self, objects: int, table: Table) -> Charge:
        """Charge a LIST returning ``objects`` of ``table``; OOM if the heap passes the limit."""
        charge = Charge(objects * self.mean_size(table) * self.amplification, self.epoch)
        self.live += charge.nbytes
        if self.limit and self.used() > self.limit and self.on_oom is not None:
            self.on_oom()
        return charge

    def release(self, charge: Charge) -> None:
        """The LIST ended: its bytes become garbage."""
        if charge.released or charge.epoch != self.epoch:
            return  # released already, or held by a process that has since been killed
        charge.released = True
        self.live = max(0.0, self.live - charge.nbytes)
        self._garbage = self.garbage() + charge.nbytes

    def reset(self) -> None:
        """A fresh process: nothing held, no garbage."""
        self.live, self._garbage, self._at = 0.0, 0.0, self.clock()
        self.epoch += 1


@dataclass
class Lifecycle:
    """Up, OOM-killed (down until a time) or re-initialising its watch cache (until a time)."""

    restart_delay: float = 10.0
    restart_delay_max: float = 300.0
    cache_init_seconds: float = 10.0
    reset_after: float = 600.0
    clock: Callable[[], float] = time.monotonic
    down_until: float = 0.0
    initializing_until: float = 0.0
    kills: int = 0
    restarts_in_a_row: int = 0
    last_start: float = field(default=0.0)

    def down(self) -> bool:
        """True while the process is dead."""
        return self.clock() < self.down_until

    def initializing(self) -> bool:
        """True while the watch cache is re-initialising after a restart."""
        now = self.clock()
        return self.down_until <= now < self.initializing_until

    def killed(self) -> float:
        """Record an OOM kill; return the seconds until the restart (CrashLoopBackOff)."""
        now = self.clock()
        if self.last_start and now - self.last_start > self.reset_after:
            self.restarts_in_a_row = 0
        delay = float(min(self.restart_delay * 2.0 ** self.restarts_in_a_row, self.restart_delay_max))
        self.restarts_in_a_row += 1
        self.kills += 1
        self.down_until = now + delay
        self.initializing_until = self.down_until + self.cache_init_seconds
        return delay

    def started(self) -> None:
        """The process listens again."""
        self.last_start = self.clock()


class MemoryCollector(Collector):
    """``lab_apiserver_heap_bytes``, ``..._memory_limit_bytes``, ``..._oom_kills_total`` and the process start time."""

    def __init__(self, heap: HeapModel, lifecycle: Lifecycle, wall: Callable[[], float] = time.time) -> None:
        self.heap, self.lifecycle, self.wall = heap, lifecycle, wall
        self.started_at = wall()

    def restarted(self) -> None:
        """A new process: ``process_start_time_seconds`` moves (counters are kept, unlike a real restart)."""
        self.started_at = self.wall()

    def collect(self):  # type: ignore[no-untyped-def]
        """Yield the memory model's samples."""
        yield GaugeMetricFamily("lab_apiserver_heap_bytes", "Modelled API server heap (LIST bytes held + garbage).",
                                value=self.heap.used())
        yield GaugeMetricFamily("lab_apiserver_memory_limit_bytes", "Modelled memory limit (0: unlimited).",
                                value=self.heap.limit)
        yield CounterMetricFamily("lab_apiserver_oom_kills", "Times the modelled heap passed the limit.",
                                  value=self.lifecycle.kills)
        yield GaugeMetricFamily("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                                value=self.started_at)
