"""Run a command without blocking the agent's event loop, with a bounded wait and captured output."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agents.errors import BackendFailed, BackendUnavailable


@dataclass(frozen=True)
class Result:
    """What a finished command returned."""

    rc: int
    out: str
    err: str


async def run(argv: list[str], *, timeout: float = 15.0, stdin: bytes | None = None) -> Result:
    """Run ``argv``; BackendUnavailable when the program is missing, BackendFailed on timeout."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise BackendUnavailable(f"{argv[0]} is not installed on this node") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise BackendFailed(f"{' '.join(argv)} did not finish within {timeout:g}s") from exc
    return Result(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


async def check(argv: list[str], *, timeout: float = 15.0) -> Result:
    """Run ``argv`` and raise BackendFailed with its stderr when it fails."""
    res = await run(argv, timeout=timeout)
    if res.rc != 0:
        raise BackendFailed(f"{' '.join(argv)} failed (rc={res.rc}): {res.err.strip() or res.out.strip()}")
    return res
