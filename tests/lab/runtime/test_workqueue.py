"""Tests for lab.runtime.workqueue."""

from __future__ import annotations

import asyncio

from lab.runtime.workqueue import WorkQueue


def test_keys_are_deduplicated_and_failures_retried() -> None:
    """A key added many times runs once per burst; a failing reconcile is retried."""

    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue("t")
        seen: list[str] = []
        failed = {"b": 1}

        async def reconcile(key: str) -> None:
            seen.append(key)
            if failed.get(key):
                failed[key] -= 1
                raise ValueError("once")

        for key in ["a", "a", "b", "a"]:
            queue.add(key)
        task = asyncio.create_task(queue.run(reconcile, retry_s=0.01, workers=2))
        for _ in range(200):
            if seen.count("b") == 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return seen

    seen = asyncio.run(scenario())
    assert seen.count("a") == 1 and seen.count("b") == 2
