"""The training worker torchrun launches: a tiny model, one gloo all-reduce per step, checkpoints, resume.

Run as ``torchrun ... -m lab.training.train --shared DIR``. Rank 0 loads the latest checkpoint from the
shared directory and broadcasts parameters and step to the others, so every rank resumes from the same
place. Rank 0 writes a checkpoint every ``--checkpoint-every`` steps (atomically) and appends progress
records to ``DIR/progress.jsonl`` (``start``, ``step``, ``checkpoint``; any rank writes ``error`` when a
collective fails) that ``lab.training.job`` turns
into metrics. A partition makes the all-reduce fail after ``--timeout`` seconds; the process exits
non-zero and torchrun restarts the group.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

CHECKPOINT = "checkpoint.pt"
PROGRESS = "progress.jsonl"


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="lab.training.train", description=__doc__)
    p.add_argument("--shared", required=True, type=Path, help="directory shared by all ranks")
    p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: run until killed)")
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--timeout", type=float, default=10.0, help="process-group timeout, seconds")
    p.add_argument("--step-sleep", type=float, default=0.05, help="seconds of 'compute' per step")
    return p.parse_args(argv)


def _record(shared: Path, **fields: Any) -> None:
    with (shared / PROGRESS).open("a") as f:
        f.write(json.dumps({"t": time.time(), **fields}) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Train until ``--steps`` or until killed; returns the exit status."""
    import torch
    import torch.distributed as dist

    args = _args(argv)
    args.shared.mkdir(parents=True, exist_ok=True)
    dist.init_process_group("gloo", timeout=timedelta(seconds=args.timeout))
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = torch.nn.Linear(32, 1)
    optim = torch.optim.SGD(model.parameters(), lr=0.01)
    step = torch.zeros(1, dtype=torch.int64)
    ckpt_path = args.shared / CHECKPOINT
    if rank == 0 and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=True)
        model.load_state_dict(state["model"])
        step[0] = int(state["step"])
    for p in model.parameters():
        dist.broadcast(p.data, src=0)
    dist.broadcast(step, src=0)
    start = int(step.item())
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    if rank == 0:
        _record(args.shared, event="start", step=start, restart=restart, world=world, pid=os.getpid())
    gen = torch.Generator().manual_seed(1000 + rank)
    current = start
    while args.steps == 0 or current < args.steps:
        x = torch.randn(16, 32, generator=gen)
        loss = (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()
        optim.zero_grad()
        loss.backward()
        try:
            for p in model.parameters():
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        except RuntimeError as exc:  # gloo timeouts and resets arrive as DistBackendError (a RuntimeError)
            _record(
                args.shared, event="error", step=current + 1, rank=rank, error=str(exc).splitlines()[0][:300]
            )
            raise
        optim.step()
        time.sleep(args.step_sleep)
        current += 1
        if rank == 0:
            _record(args.shared, event="step", step=current, loss=round(float(loss.detach()), 6))
            if current % args.checkpoint_every == 0:
                tmp = ckpt_path.with_suffix(".tmp")
                torch.save({"step": current, "model": model.state_dict()}, tmp)
                os.replace(tmp, ckpt_path)
                _record(args.shared, event="checkpoint", step=current)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
