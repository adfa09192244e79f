"""Tests for lab.training.job: a two-rank torchrun job across namespaces, through partitions a real node agent applies.

The partitions are applied by the node agent (``python -m agents --netns <rank-1 namespace>``, started by
``lab.gpu.nodes.start_gpu_agents``) through its HTTP API with the runner's token, as a campaign would.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab.gpu.nodes import GpuNodeHandle, start_gpu_agents, stop_gpu_agents
from lab.testing import running_api
from lab.training.job import JobConfig, TrainingJob
from lab.training.netns import list_namespaces, training_network
from lab.training.progress import Progress
from tests.lab.training.conftest import wait_for

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("require_root", "require_torch")]

CHECKPOINT_EVERY = 10
TIMEOUT_S = 5.0


@pytest.fixture
def job(tmp_path: Path) -> Iterator[TrainingJob]:
    """A running two-rank job; stopped, its namespaces and torchelastic folders removed afterwards."""
    job_id = "j" + uuid.uuid4().hex[:7]
    with training_network(job_id, 2) as net:
        with TrainingJob(
            tmp_path, net, JobConfig(checkpoint_every=CHECKPOINT_EVERY, timeout_s=TIMEOUT_S)
        ) as j:
            yield j
        assert list((tmp_path / "tmp").glob("torchelastic_*")) == []
    assert list_namespaces(job_id) == []


def _reached(job: TrainingJob, step: int) -> Progress | None:
    p = job.progress()
    return p if p.max_step >= step else None


@dataclass
class RankAgent:
    """The node agent whose partitions land in rank 1's namespace, and the runner token to call it."""

    handle: GpuNodeHandle
    runner_token: str

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One authenticated call to the agent."""
        data = json.dumps(body).encode() if body is not None else None
        resp = httpx.request(
            method, self.handle.endpoint + path, content=data, timeout=15,
            headers={"Authorization": f"Bearer {self.runner_token}", "Content-Type": "application/json"},
        ).raise_for_status()  # fmt: skip
        return json.loads(resp.content or b"null")

    def partition(self, action: str, peer: str) -> str:
        """Ask the agent for an nccl-partition against ``peer``; returns the fault id."""
        fault_id = f"part-{action.lower()}"
        params = {"kind": "nccl-partition", "action": action, "direction": "both", "peers": [f"{peer}/32"]}
        self.call("POST", "/v1/faults", {"fault_id": fault_id, "run_id": "train-test", "ttl_seconds": 120,
                                         "params": params})  # fmt: skip
        return fault_id


@pytest.fixture
def rank_agent(tmp_path: Path, job: TrainingJob) -> Iterator[RankAgent]:
    """A real API server (for TokenReview) with the Node "rank-1", and that node's agent (as system:node:rank-1)
    partitioning inside rank 1's namespace."""
    with running_api(tmp_path / "api", nodes=["rank-1"]) as api:
        netns = {"rank-1": job.net.ranks[1].namespace}
        handles = start_gpu_agents(tmp_path / "gpu", api.url, api.token_for("system:node:rank-1"), ["rank-1"],
                                   netns=netns, ca_file=api.ca_file)  # fmt: skip
        try:
            yield RankAgent(handles[0], api.agent_token)
        finally:
            stop_gpu_agents(handles)


def _errors_after(job: TrainingJob, t: float) -> list[tuple[float, int, str]]:
    return [e for e in job.progress().errors if e[0] > t]


def _metric(job: TrainingJob, name: str) -> float:
    text = httpx.get(job.metrics_url, timeout=5).raise_for_status().text
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))


def test_job_progresses_then_drop_stalls_it_and_it_resumes_from_checkpoint(
    job: TrainingJob, rank_agent: RankAgent
) -> None:
    """The job trains and serves metrics; a DROP past the gloo timeout stalls it; after revert it resumes."""
    p0 = wait_for(lambda: _reached(job, CHECKPOINT_EVERY + 3), 60, "first steps")
    assert p0.lost_steps == 0 and p0.restarts == 0
    assert _metric(job, "training_steps_total") >= CHECKPOINT_EVERY + 3
    assert _metric(job, "training_last_checkpoint_step") >= CHECKPOINT_EVERY
    cut = time.time()
    fault = rank_agent.partition("DROP", job.net.ranks[0].address)
    at_cut = job.progress().max_step
    errors = wait_for(lambda: _errors_after(job, cut), 30, "the collective to time out")
    assert "Timed out" in errors[0][2] or "timeout" in errors[0][2].lower(), errors
    assert job.progress().max_step <= at_cut + 1  # at most the step already in flight completes
    wait_for(lambda: job.progress().last_step_time < time.time() - 2 * TIMEOUT_S, 30, "progress to stop")
    stalled = job.progress().max_step  # the last step completed (and possibly checkpointed) before the stall
    rank_agent.call("DELETE", f"/v1/faults/{fault}")
    healed = time.time()
    p = wait_for(lambda: (q := job.progress()).restarts >= 1 and q.max_step > stalled + 3 and q, 60, "resume")
    resumed_at = next(t for t in p.start_times if t > cut)
    resume_step = p.resume_steps[p.start_times.index(resumed_at)]
    assert resume_step % CHECKPOINT_EVERY == 0 and resume_step <= stalled
    assert p.lost_steps <= CHECKPOINT_EVERY
    assert _metric(job, "training_restarts_total") >= 1
    assert _metric(job, "training_lost_steps_total") == p.lost_steps
    print(
        f"\nDROP via agent {healed - cut:.1f}s: first failure +{errors[0][0] - cut:.2f}s, restart at +{resumed_at - cut:.1f}s "
        f"({resumed_at - healed:.1f}s after revert), resumed from step {resume_step} (stalled at {stalled}), "
        f"lost steps {p.lost_steps}, restarts {p.restarts}, relaunches {job.relaunches()}"
    )


def test_reject_partition_fails_fast_and_job_recovers(job: TrainingJob, rank_agent: RankAgent) -> None:
    """A REJECT partition fails the collective with a reset instead of a timeout; after revert the job recovers."""
    wait_for(lambda: _reached(job, CHECKPOINT_EVERY + 3), 60, "first steps")
    cut = time.time()
    fault = rank_agent.partition("REJECT", job.net.ranks[0].address)
    stalled = job.progress().max_step
    errors = wait_for(lambda: _errors_after(job, cut), 30, "the collective to fail")
    assert not any("Timed out" in e[2] for e in errors), errors
    rank_agent.call("DELETE", f"/v1/faults/{fault}")
    healed = time.time()
    p = wait_for(lambda: (q := job.progress()).restarts >= 1 and q.max_step > stalled + 3 and q, 75, "resume")
    assert p.lost_steps <= CHECKPOINT_EVERY
    resumed_at = next(t for t in p.start_times if t > cut)
    print(
        f"\nREJECT via agent {healed - cut:.1f}s: first failure +{errors[0][0] - cut:.2f}s ({errors[0][2][:80]}), "
        f"restart {resumed_at - healed:.1f}s after revert, lost steps {p.lost_steps}, relaunches {job.relaunches()}"
    )
