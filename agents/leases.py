"""The faults the agent holds, their leases, and the background task that reverts expired ones.

Order on inject: limits → ``prepare`` (captures undo, changes nothing) → persist (fsync) → ``apply``.
Order on revert: cancel the fault's background tasks → ``revert`` → persist without it. A revert that
fails keeps the fault listed and is retried by the expiry loop. On start every fault in the state file
is reverted (reason ``restart``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from agents.errors import AgentFailure, Conflict, NotFound
from agents.handlers import Handler
from agents.limits import Limits
from agents.metrics import Metrics
from agents.protocol import FaultStatus, InjectRequest, RevertResult
from agents.state import StateFile, StoredFault

RETRY_FAILED_REVERT_S = 2.0
MAX_WAIT_S = 1.0


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class Leases:
    """Holds faults, persists them, and reverts them on request, on lease expiry or on restart."""

    def __init__(self, handlers: dict[str, Handler], state: StateFile, limits: Limits,
                 log: Callable[[str], None] = print, clock: Callable[[], float] = time.time) -> None:
        self.handlers = handlers
        self.state = state
        self.limits = limits
        self.log = log
        self.clock = clock
        self.faults: dict[str, StoredFault] = {}
        self.tasks: dict[str, list[asyncio.Task[None]]] = {}
        self.metrics = Metrics(lambda: list(self.faults.values()))
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> list[RevertResult]:
        """Revert whatever a previous run of the agent held, then start the expiry loop."""
        leftover = self.state.load()
        results = []
        for f in leftover:
            self.faults[f.fault_id] = f
        for f in leftover:
            try:
                results.append(await self.revert(f.fault_id, "restart"))
            except AgentFailure as exc:  # kept listed: the expiry loop retries it
                results.append(RevertResult(fault_id=f.fault_id, reverted=False, reason="restart", message=exc.message))
        self._loop = asyncio.create_task(self._expiry_loop())
        return results

    async def stop(self, revert: bool = True) -> None:
        """Stop the loop; revert everything held (reason ``shutdown``) unless told not to."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if revert:
            await self.revert_all(None, "shutdown")

    def _save(self) -> None:
        self.state.save(list(self.faults.values()))

    def status(self, f: StoredFault, state: str = "active") -> FaultStatus:
        """The wire view of a held fault (no evidence)."""
        return FaultStatus(
            fault_id=f.fault_id, run_id=f.run_id, kind=f.params.kind, params=f.params, state=state,  # type: ignore[arg-type]
            injected_at=_dt(f.injected_at), expires_at=_dt(f.expires_at),
            lease_seconds_remaining=round(max(0.0, f.expires_at - self.clock()), 3),
        )

    async def inject(self, req: InjectRequest) -> tuple[FaultStatus, bool]:
        """Apply a fault; returns (status, created). Re-sending the same request renews instead."""
        self.limits.check(req, len(self.faults))
        kind = req.params.kind
        async with self._lock:
            held = self.faults.get(req.fault_id)
            if held is not None:
                if held.params != req.params or held.run_id != req.run_id:
                    raise Conflict(f"fault {req.fault_id!r} is already active with other parameters")
                held.expires_at = self.clock() + req.ttl_seconds
                self._save()
                return self.status(held), False
            now = self.clock()
            f = StoredFault(fault_id=req.fault_id, run_id=req.run_id, params=req.params, ttl_seconds=req.ttl_seconds,
                            injected_at=now, expires_at=now + req.ttl_seconds)
            handler = self.handlers[kind]
            try:
                f.undo = await handler.prepare(f)
            except AgentFailure:
                self.metrics.injections.labels(kind, "refused").inc()
                raise
            self.faults[f.fault_id] = f
            self._save()
            try:
                self.tasks[f.fault_id] = await handler.apply(f)
            except BaseException:
                self.metrics.injections.labels(kind, "failed").inc()
                await self._revert_locked(f.fault_id, "rollback", count=False)
                raise
            f.state = "active"
            f.expires_at = self.clock() + req.ttl_seconds
            self._save()
            self.metrics.injections.labels(kind, "ok").inc()
            self._wake.set()
            self.log(f"injected {kind} {f.fault_id} (run {f.run_id}, ttl {req.ttl_seconds:g}s)")
            return self.status(f), True

    async def renew(self, fault_id: str, ttl: float) -> FaultStatus:
        """Push a fault's expiry to now + ttl."""
        self.limits.check_ttl(ttl)
        async with self._lock:
            f = self.faults.get(fault_id)
            if f is None:
                raise NotFound(f"no active fault {fault_id!r} (it may have expired and been reverted)")
            f.expires_at = self.clock() + ttl
            self._save()
            self._wake.set()
            return self.status(f)

    async def revert(self, fault_id: str, reason: str) -> RevertResult:
        """Revert one fault; reverting one that is not held answers ``reverted=False``."""
        async with self._lock:
            return await self._revert_locked(fault_id, reason)

    async def _revert_locked(self, fault_id: str, reason: str, count: bool = True) -> RevertResult:
        f = self.faults.get(fault_id)
        if f is None:
            return RevertResult(fault_id=fault_id, reverted=False, reason=reason, message="not active (nothing to do)")
        for task in self.tasks.pop(fault_id, []):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await self.handlers[f.params.kind].revert(f)
        except AgentFailure as exc:
            f.expires_at = self.clock() + RETRY_FAILED_REVERT_S
            self._save()
            self.log(f"revert of {fault_id} failed, will retry: {exc.message}")
            raise
        del self.faults[fault_id]
        self._save()
        if count:
            self.metrics.reverts.labels(f.params.kind, reason).inc()
        self.log(f"reverted {f.params.kind} {fault_id} ({reason})")
        return RevertResult(fault_id=fault_id, reverted=True, reason=reason)

    async def revert_all(self, run_id: str | None, reason: str) -> list[RevertResult]:
        """Revert every held fault (of ``run_id`` when given); failures are reported, not raised."""
        out = []
        for fid in [k for k, f in self.faults.items() if run_id is None or f.run_id == run_id]:
            try:
                out.append(await self.revert(fid, reason))
            except AgentFailure as exc:
                out.append(RevertResult(fault_id=fid, reverted=False, reason=reason, message=exc.message))
        return out

    async def _expiry_loop(self) -> None:
        while True:
            now = self.clock()
            for fid in [k for k, f in self.faults.items() if f.expires_at <= now]:
                try:
                    await self.revert(fid, "lease-expired")
                except AgentFailure:
                    pass
            nxt = min((f.expires_at for f in self.faults.values()), default=now + MAX_WAIT_S)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, min(MAX_WAIT_S, nxt - self.clock())))
