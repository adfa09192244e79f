"""The runtime's event loops: the standard library's unless uvloop is asked for, from the command line down."""

from __future__ import annotations

import asyncio

import pytest

from lab.runtime.__main__ import parse_args
from lab.runtime.loops import EventLoopKind, run


@pytest.mark.parametrize(("kind", "module"), [("asyncio", "asyncio"), ("uvloop", "uvloop")])
def test_run_uses_the_loop_of_the_kind_asked(kind: EventLoopKind, module: str) -> None:
    """A coroutine run for a kind runs on that kind's loop."""
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__.split(".")[0])

    run(main(), kind)
    assert seen == [module]


def test_the_runtime_defaults_to_the_standard_loop_and_takes_uvloop_when_asked() -> None:
    """`python -m lab.runtime` runs on asyncio's loop unless `--event-loop uvloop` is given."""
    base = ["--api", "https://127.0.0.1:6443", "--users", "users.json"]
    assert parse_args(base)[0].event_loop == "asyncio"
    assert parse_args([*base, "--event-loop", "uvloop"])[0].event_loop == "uvloop"
    with pytest.raises(SystemExit):
        parse_args([*base, "--event-loop", "trio"])
