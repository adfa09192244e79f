"""Tests for lab.training.job: a two-rank torchrun job across namespaces, through a DROP partition."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.training import partition
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


def test_job_makes_progress_and_serves_metrics(job: TrainingJob) -> None:
    """Both ranks train in step; the loopback metrics endpoint reports steps and a checkpoint."""
    p = wait_for(lambda: _reached(job, CHECKPOINT_EVERY + 2), 60, "12 steps")
    assert p.lost_steps == 0 and p.restarts == 0
    with urllib.request.urlopen(job.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    steps = next(
        float(line.split()[1]) for line in text.splitlines() if line.startswith("training_steps_total ")
    )
    assert steps >= CHECKPOINT_EVERY + 2
    assert (
        f"training_last_checkpoint_step {CHECKPOINT_EVERY}" in text
        or "training_last_checkpoint_step 20" in text
    )


def test_drop_partition_hangs_then_job_resumes_from_checkpoint(job: TrainingJob) -> None:
    """A DROP longer than the gloo timeout stops progress; after heal torchrun restarts from the checkpoint."""
    wait_for(lambda: _reached(job, CHECKPOINT_EVERY + 3), 60, "first steps")
    partition.partition(job.net, "DROP")
    cut = time.time()
    stalled = job.progress().max_step
    wait_for(lambda: job.progress().last_step_time < time.time() - 2 * TIMEOUT_S, 30, "progress to stop")
    assert job.progress().max_step <= stalled + 1
    partition.heal(job.net)
    healed = time.time()
    p = wait_for(lambda: (q := job.progress()).restarts >= 1 and q.max_step > stalled + 3 and q, 60, "resume")
    resumed_at = next(t for t in p.start_times if t > cut)
    resume_step = p.resume_steps[p.start_times.index(resumed_at)]
    assert resume_step % CHECKPOINT_EVERY == 0 and resume_step <= stalled
    assert 0 < p.lost_steps <= CHECKPOINT_EVERY or resume_step == stalled
    print(
        f"\nDROP {healed - cut:.1f}s: restart at +{resumed_at - cut:.1f}s ({resumed_at - healed:.1f}s after heal), "
        f"resumed from step {resume_step} (stalled at {stalled}), lost steps {p.lost_steps}, restarts {p.restarts}"
    )
