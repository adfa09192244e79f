"""Graded guardrails through every phase of a stage (tasks/run/guardrails.py, tasks/run/stage.py), with the plain
runner against a real HTTP endpoint: warn, pause (cleared, and timed out), abort and halt, a hung probe, a breach
during verification and one during recovery."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from blueprints import parse
from tasks.faults.base import Evidence, FaultContext, Injection
from tasks.probes import ProbeContext
from tasks.run.connect import plain_ops, probe_evaluator
from tasks.run.recorder import Recorder
from tasks.run.runner import CampaignRunner
from tests.conftest import poll
from tests.flows.conftest import FileFault, Health, ListLedger

BLUEPRINT = """
name: severity-test
owner: tests
hypothesis: {{belief: the endpoint stays up, expectations: ["up >= 1 during fault"]}}
target: {{cluster: lab, namespaces: [default], blast_radius: {{max_pods: 1}}}}
observables: [{{name: up, query: up}}]
continue_on_abort: {cont}
guardrails:
  - name: endpoint-healthy
    every: 0.1s
    severity: {severity}
    pause_timeout: {pause_timeout}
    probe: {{name: endpoint, type: http, url: "{url}", timeout: 0.5s}}
baseline: 0s
stages:
  - name: first
    faults: [{{kind: noop, name: a}}, {{kind: noop, name: b}}]
    observe: {observe}
    recovery: {recovery}
  - name: second
    faults: [{{kind: noop, name: c}}]
    observe: 0.2s
    recovery: 0s
"""


def runner_for(tmp_path: Path, health: Health, severity: str = "abort", observe: str = "1s", recovery: str = "0s",
               cont: bool = False, pause_timeout: str = "60s", fault: Any = None) -> CampaignRunner:
    """A plain runner over FileFault markers guarded by the endpoint at the given severity."""
    campaign = parse(BLUEPRINT.format(url=health.url, severity=severity, observe=observe, recovery=recovery,
                                      cont=str(cont).lower(), pause_timeout=pause_timeout))
    ops = plain_ops({"noop": fault or FileFault(tmp_path)}, ListLedger(), probe_evaluator(ProbeContext()))
    return CampaignRunner(campaign, FaultContext(cluster=None, run_id="r1"), ops, Recorder("r1"))


def events(runner: CampaignRunner, kind: str) -> list[Any]:
    """The runner's events of one kind, so far."""
    return [e for e in list(runner.recorder.events) if e.kind == kind]


def injected(runner: CampaignRunner) -> list[str | None]:
    """The faults injected so far, in order."""
    return [e.fault for e in events(runner, "inject")]


def markers(tmp_path: Path) -> list[str]:
    """Fault marker files still present (each is an un-rolled-back fault)."""
    return sorted(p.name for p in tmp_path.glob("*.injected"))


def test_warn_is_recorded_and_the_campaign_goes_on(tmp_path: Path, health: Health) -> None:
    """A warn guardrail in breach mid-stage is recorded once (severity warn), its clearing is noted, and every
    stage still runs and completes."""
    runner = runner_for(tmp_path, health, severity="warn", observe="2s")
    def heal_once_warned() -> None:
        poll(lambda: events(runner, "guardrail-breach"), 30, "the warning")
        health.healthy = True

    with health.breaks_when(lambda: injected(runner) == ["a", "b"]):
        threading.Thread(target=heal_once_warned, daemon=True).start()
        assert runner.run() == "completed"
    breaches = events(runner, "guardrail-breach")
    assert len(breaches) == 1 and breaches[0].data["severity"] == "warn"
    assert any("within tolerance again" in e.message for e in events(runner, "note"))
    assert [s.status for s in runner.recorder.stages] == ["completed", "completed"]
    assert markers(tmp_path) == []


def test_pause_holds_the_next_injection_until_the_guardrail_clears(tmp_path: Path, health: Health) -> None:
    """A pause guardrail that breaks after fault a holds fault b's injection; once it clears, b is injected and the
    stage completes."""
    flip = FlipAfterInject(tmp_path, health, after="a")
    runner = runner_for(tmp_path, health, severity="pause", fault=flip)

    def clear_when_held() -> None:
        poll(lambda: any("injections held" in e.message for e in events(runner, "note")), 30, "the hold")
        assert injected(runner) == ["a"], "b must not be injected while the stage is held"
        health.healthy = True

    helper = threading.Thread(target=clear_when_held, daemon=True)
    helper.start()
    assert runner.run() == "completed"
    helper.join(timeout=5)
    assert injected(runner) == ["a", "b", "c"]
    assert [e.data["severity"] for e in events(runner, "guardrail-breach")] == ["pause"]
    assert markers(tmp_path) == []


def test_pause_that_does_not_clear_aborts_the_stage(tmp_path: Path, health: Health) -> None:
    """A pause guardrail still in breach after its pause_timeout aborts the stage; b is never injected."""
    flip = FlipAfterInject(tmp_path, health, after="a")
    runner = runner_for(tmp_path, health, severity="pause", pause_timeout="1s", fault=flip)
    assert runner.run() == "aborted"
    assert injected(runner) == ["a"]
    assert "held the stage" in runner.recorder.stages[0].reason
    assert markers(tmp_path) == []


def test_abort_goes_on_with_continue_on_abort_but_halt_stops_the_campaign(tmp_path: Path, health: Health) -> None:
    """With continue_on_abort, an abort guardrail's breach aborts only its stage (the second stage runs once the
    endpoint is healthy again); a halt guardrail's breach stops the campaign there."""
    for severity, stages in (("abort", ["first", "second"]), ("halt", ["first"])):
        health.healthy = True
        flip = FlipAfterInject(tmp_path, health, after="b", heal_after_rollback=True)
        runner = runner_for(tmp_path, health, severity=severity, observe="30s", cont=True, fault=flip)
        runner.run()
        assert [s.name for s in runner.recorder.stages] == stages, severity
        assert runner.recorder.stages[0].status == "aborted"
        assert f"({severity})" in runner.recorder.stages[0].reason
        assert markers(tmp_path) == []


def test_a_probe_past_its_timeout_and_a_hung_evaluation_count_as_breached(tmp_path: Path, health: Health) -> None:
    """An endpoint that stops answering (10 s an answer against the probe's 0.5 s timeout) aborts the stage; so does
    an evaluation that never returns (a stuck client), after the probe's timeout plus the grace: the watcher does not
    hang with it."""
    runner = runner_for(tmp_path, health, observe="30s")

    def hang() -> None:
        poll(lambda: injected(runner) == ["a", "b"], 30, "both faults injected")
        health.delay = 10.0

    threading.Thread(target=hang, daemon=True).start()
    assert runner.run() == "aborted"
    assert "timed out" in runner.recorder.stages[0].reason
    assert markers(tmp_path) == []

    health.delay = 0.0
    stuck = threading.Event()
    runner = runner_for(tmp_path, health, observe="30s")
    evaluate = runner.ops.evaluate

    def evaluate_or_hang(probe: Any) -> Any:
        if injected(runner) == ["a", "b"]:
            stuck.wait()  # never set: this evaluation never returns
        return evaluate(probe)

    runner.ops.evaluate = evaluate_or_hang
    try:
        assert runner.run() == "aborted"
    finally:
        stuck.set()
    assert "did not answer within 2.5 s" in runner.recorder.stages[0].reason
    assert markers(tmp_path) == []


def test_a_breach_during_verification_stops_further_injections(tmp_path: Path, health: Health) -> None:
    """The guardrail is watched while fault a is being verified: it breaks then, so b is never injected and the
    stage is aborted and rolled back."""
    fault = SlowVerify(tmp_path, health)
    runner = runner_for(tmp_path, health, fault=fault)
    fault.breached = lambda: bool(events(runner, "guardrail-breach"))
    assert runner.run() == "aborted"
    assert injected(runner) == ["a"]
    assert fault.breach_seen_during_verify
    assert markers(tmp_path) == []


def test_a_breach_during_recovery_aborts_the_stage(tmp_path: Path, health: Health) -> None:
    """A guardrail that breaks once the faults are rolled back (the system did not recover) aborts the stage after
    the fact, and cuts the recovery window short."""
    runner = runner_for(tmp_path, health, observe="0.3s", recovery="30s")
    with health.breaks_when(lambda: bool(events(runner, "recovery-start"))):
        assert runner.run() == "aborted"
    first = runner.recorder.stages[0]
    assert first.status == "aborted" and "after the faults were rolled back" in first.reason
    assert [s.name for s in runner.recorder.stages] == ["first"]
    recovery = next(w for w in runner.recorder.windows if w.kind == "recovery")
    assert (recovery.end - recovery.start).total_seconds() < 30


class FlipAfterInject(FileFault):
    """A FileFault that makes the endpoint unhealthy right after injecting ``after`` (optionally healthy again once
    it is rolled back)."""

    def __init__(self, root: Path, health: Health, after: str, heal_after_rollback: bool = False) -> None:
        super().__init__(root)
        self.health, self.after, self.heal = health, after, heal_after_rollback

    def inject(self, inj: Injection, ctx: FaultContext) -> Injection:
        """Create the marker; break the endpoint after the named fault."""
        out = super().inject(inj, ctx)
        if inj.fault_id == self.after:
            self.health.healthy = False
        return out

    def rollback(self, inj: Injection, ctx: FaultContext) -> None:
        """Delete the marker; heal the endpoint when asked to."""
        super().rollback(inj, ctx)
        if self.heal and inj.fault_id == self.after:
            self.health.healthy = True


class SlowVerify(FileFault):
    """A FileFault whose verification of fault a breaks the endpoint and returns only once the breach is recorded
    (``breached``, set by the test)."""

    def __init__(self, root: Path, health: Health) -> None:
        super().__init__(root)
        self.health = health
        self.breached: Any = lambda: False
        self.breach_seen_during_verify = False

    def verify(self, inj: Injection, ctx: FaultContext) -> Evidence:
        """Break the endpoint while verifying a, and wait for the watcher to record the breach."""
        if inj.fault_id == "a":
            self.health.healthy = False
            poll(self.breached, 30, "the guardrail breach during verification")
            self.breach_seen_during_verify = True
        return super().verify(inj, ctx)
