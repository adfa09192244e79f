"""API Priority and Fairness: seats per priority level, shuffle-sharded queues, 429 rejections.

Seats: level seats = ceil(total_seats * shares / sum(shares of all Limited levels)); Exempt levels
bypass. A request occupies ``width`` seats (LIST: ceil(objects/100) clamped 1..10, else 1) while it
executes. When a level has no free seats the request joins the shortest queue of its flow's hand
(shuffle sharding over the level's ``queues`` with ``handSize``); a full hand is rejected (429,
reason queue-full), a Reject level rejects at once (concurrency-limit), and a request waiting longer
than the queue timeout is rejected (time-out). Freed seats go to queue heads round robin.
PriorityLevelConfigurations are read live, so changes through the API apply to the next request.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import deque
from dataclasses import dataclass, field

from lab.apiserver import errors
from lab.apiserver.apf_match import Classifier, RequestInfo
from lab.apiserver.metrics import Metrics
from lab.apiserver.resources import BY_KEY
from lab.apiserver.store import Obj, Store

PLCS = BY_KEY["prioritylevelconfigurations.flowcontrol.apiserver.k8s.io"]


@dataclass
class Waiter:
    """A queued request."""

    width: int
    future: asyncio.Future[None]
    enqueued: float


@dataclass
class Level:
    """Runtime state of one priority level."""

    name: str
    uid: str = ""
    exempt: bool = False
    reject: bool = False
    seats: int = 1
    queues: list[deque[Waiter]] = field(default_factory=list)
    hand_size: int = 1
    queue_length: int = 50
    executing_seats: int = 0
    executing: int = 0
    waiting: int = 0
    next_queue: int = 0


@dataclass
class Ticket:
    """A granted execution slot; release it exactly once."""

    level: Level
    width: int
    schema_name: str
    schema_uid: str
    released: bool = False


class FlowControl:
    """The APF dispatcher of one server."""

    def __init__(self, store: Store, metrics: Metrics, total_seats: int, queue_timeout: float) -> None:
        self.store = store
        self.metrics = metrics
        self.total_seats = total_seats
        self.queue_timeout = queue_timeout
        self.classifier = Classifier(store)
        self.levels: dict[str, Level] = {}
        self._generation = -1

    def _refresh(self) -> None:
        gen = self.store.generation.get(PLCS.key, 0)
        if gen == self._generation:
            return
        self._generation = gen
        objs = list(self.store.table(PLCS).iter_sorted(None))
        limited = [o for o in objs if (o.get("spec") or {}).get("type") == "Limited"]
        total_shares = sum(_shares(o) for o in limited) or 1
        names = set()
        for obj in objs:
            self._configure(obj, total_shares)
            names.add(obj["metadata"]["name"])
        for name in list(self.levels):
            if name not in names:
                del self.levels[name]
        for level in self.levels.values():
            self._dispatch(level)

    def _configure(self, obj: Obj, total_shares: int) -> None:
        name = obj["metadata"]["name"]
        level = self.levels.setdefault(name, Level(name))
        level.uid = obj["metadata"].get("uid", "")
        spec = obj.get("spec") or {}
        level.exempt = spec.get("type") == "Exempt"
        limited = spec.get("limited") or {}
        level.seats = max(1, math.ceil(self.total_seats * _shares(obj) / total_shares))
        response = limited.get("limitResponse") or {}
        level.reject = response.get("type") == "Reject"
        queuing = response.get("queuing") or {}
        count = max(1, int(queuing.get("queues", 64)))
        level.hand_size = max(1, min(count, int(queuing.get("handSize", 8))))
        level.queue_length = max(1, int(queuing.get("queueLengthLimit", 50)))
        if len(level.queues) != count:
            old = [w for q in level.queues for w in q]
            level.queues = [deque() for _ in range(count)]
            for n, waiter in enumerate(old):
                level.queues[n % count].append(waiter)
        self.metrics.seat_limit.labels(name).set(0 if level.exempt else level.seats)

    def classify(self, info: RequestInfo) -> tuple[Obj | None, Level | None]:
        """The matching FlowSchema and its priority level's state."""
        self._refresh()
        schema = self.classifier.classify(info, self.levels)
        if schema is None:
            return None, self.levels.get("catch-all")
        level_name = ((schema.get("spec") or {}).get("priorityLevelConfiguration") or {}).get("name", "")
        return schema, self.levels.get(level_name) or self.levels.get("catch-all")

    async def acquire(self, info: RequestInfo, width: int) -> Ticket:
        """Wait for seats at the request's priority level; raise 429 ApiError when rejected."""
        schema, level = self.classify(info)
        schema_name = schema["metadata"]["name"] if schema else ""
        schema_uid = schema["metadata"].get("uid", "") if schema else ""
        if level is None:
            raise errors.too_many_requests("no priority level configuration found")
        width = max(1, min(width, level.seats))
        ticket = Ticket(level, width, schema_name, schema_uid)
        if level.exempt or (level.waiting == 0 and level.executing_seats + width <= level.seats):
            self._grant(level, width)
            self._observe(ticket, 0.0)
            return ticket
        if level.reject:
            self._reject(level, schema_name, "concurrency-limit")
        queue = self._choose_queue(level, Classifier.flow_key(schema, info) if schema else info.user)
        if queue is None:
            self._reject(level, schema_name, "queue-full")
        assert queue is not None
        waiter = Waiter(width, asyncio.get_running_loop().create_future(), time.monotonic())
        queue.append(waiter)
        level.waiting += 1
        self.metrics.inqueue.labels(level.name).inc()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), self.queue_timeout)
        except TimeoutError:
            if not waiter.future.done():
                self._abandon(level, queue, waiter, schema_name)
                self._reject(level, schema_name, "time-out")
        except asyncio.CancelledError:
            if waiter.future.done():
                self.release(ticket)
            else:
                self._abandon(level, queue, waiter, schema_name)
            raise
        self._observe(ticket, time.monotonic() - waiter.enqueued)
        return ticket

    def _abandon(self, level: Level, queue: deque[Waiter], waiter: Waiter, schema_name: str) -> None:
        waiter.future.cancel()
        _discard(queue, waiter)
        level.waiting -= 1
        self.metrics.inqueue.labels(level.name).dec()
        self.metrics.wait.labels(level.name, schema_name, "false").observe(time.monotonic() - waiter.enqueued)

    def _grant(self, level: Level, width: int) -> None:
        level.executing += 1
        level.executing_seats += width
        self.metrics.executing.labels(level.name).inc()
        self.metrics.executing_seats.labels(level.name).inc(width)

    def _observe(self, ticket: Ticket, waited: float) -> None:
        self.metrics.wait.labels(ticket.level.name, ticket.schema_name, "true").observe(waited)
        self.metrics.dispatched.labels(ticket.level.name, ticket.schema_name).inc()

    def _reject(self, level: Level, schema_name: str, reason: str) -> None:
        self.metrics.rejected.labels(level.name, schema_name, reason).inc()
        raise errors.too_many_requests(
            "Too many requests, please try again later."
            if reason != "time-out"
            else "The request was rejected because it waited too long in its queue (time-out)."
        )

    def _choose_queue(self, level: Level, flow: str) -> deque[Waiter] | None:
        """Shuffle sharding: deal a hand of queues from the flow's hash, take the shortest non-full one."""
        digest = int.from_bytes(hashlib.blake2b(flow.encode(), digest_size=8).digest(), "big")
        remaining = list(range(len(level.queues)))
        best: deque[Waiter] | None = None
        for _ in range(level.hand_size):
            digest, pick = divmod(digest, len(remaining))
            queue = level.queues[remaining.pop(pick)]
            if len(queue) < level.queue_length and (best is None or len(queue) < len(best)):
                best = queue
        return best

    def release(self, ticket: Ticket) -> None:
        """Free a ticket's seats and dispatch waiting requests."""
        if ticket.released:
            return
        ticket.released = True
        level = ticket.level
        level.executing -= 1
        level.executing_seats -= ticket.width
        self.metrics.executing.labels(level.name).dec()
        self.metrics.executing_seats.labels(level.name).dec(ticket.width)
        self._dispatch(level)

    def _dispatch(self, level: Level) -> None:
        """Hand free seats to queue heads, round robin over non-empty queues."""
        count = len(level.queues)
        while level.waiting:
            for step in range(count):
                index = (level.next_queue + step) % count
                if level.queues[index]:
                    break
            else:
                return
            queue = level.queues[index]
            head = queue[0]
            if level.executing_seats + head.width > level.seats and level.executing_seats > 0:
                return
            queue.popleft()
            level.next_queue = (index + 1) % count
            level.waiting -= 1
            self.metrics.inqueue.labels(level.name).dec()
            self._grant(level, head.width)
            head.future.set_result(None)


def _shares(obj: Obj) -> int:
    limited = (obj.get("spec") or {}).get("limited") or {}
    return int(limited.get("nominalConcurrencyShares", 30))


def _discard(queue: deque[Waiter], waiter: Waiter) -> None:
    try:
        queue.remove(waiter)
    except ValueError:
        pass
