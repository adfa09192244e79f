"""The machine-readable results of one run: verdicts, their history and flags, and every observable's statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from blueprints.refutability import weak_expectations
from reports.frames import Run
from reports.history import Flags, HistoryEntry, HistoryStore, flags
from reports.stats import DEFAULT_RECOVER_SAMPLES, ObservableStats, no_measurable_effect, observable_stats
from reports.verdicts import ExpectationResult, Overall, evaluate_all, overall


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpectationReport(_Out):
    """An expectation's verdict with its earlier history and what that history says."""

    result: ExpectationResult
    history: list[HistoryEntry] = []
    flags: Flags = Flags()


class RunResults(_Out):
    """Everything the report concludes about one run (written as ``results.json``)."""

    run_id: str
    campaign: str
    fingerprint: str
    started_at: datetime
    status: str
    overall: Overall
    low_information: bool = False
    no_effect: list[str] = []
    """Observables named by the hypothesis whose fault windows were indistinguishable from the baseline."""
    warnings: list[str] = []
    """Refutability warnings about the hypothesis (blueprints/refutability.py)."""
    drift: bool = False
    aborted: dict[str, str] = {}
    rollback_problems: list[str] = []
    error_budget: dict[str, dict[str, Any]] = {}
    """The error-budget gate's figures: ``before`` (what remained when the run started) and ``after`` (what the run
    consumed), from the record's error-budget events."""
    expectations: list[ExpectationReport]
    observables: list[ObservableStats]


def rollback_problems(run: Run) -> list[str]:
    """The record's rollback problems plus every fault whose rollback failed or never happened."""
    out = list(run.record.rollback_problems)
    located = [("setup", f) for f in run.record.setup] + [(s.name, f) for s in run.record.stages for f in s.faults]
    for where, f in located:
        if f.rollback_ok is False:
            msg = f"{where}/{f.id}: rollback failed" + (f": {f.rollback_error}" if f.rollback_error else "")
            if not any(f.id in p for p in out):
                out.append(msg)
        elif f.injected_at is not None and f.rolled_back_at is None and f.rollback_ok is None:
            out.append(f"{where}/{f.id}: injected but no rollback recorded")
    return out


def analyse(run: Run, history: HistoryStore | None = None,
            recover_samples: int = DEFAULT_RECOVER_SAMPLES) -> RunResults:
    """Verdicts, history flags and statistics for one run (history is read, not written)."""
    results = evaluate_all(run)
    verdict = overall(run, results)
    fp = run.record.target.fingerprint
    reports = []
    for r in results:
        past = history.expectation_history(run.record.campaign, r.text, before=run.record.started_at,
                                           exclude_run=run.record.run_id) if history else []
        reports.append(ExpectationReport(result=r, history=past, flags=flags(past, fp)))
    obs = run.observables()
    stats = [observable_stats(run, o, recover_samples) for o in obs]
    named = {r.observable for r in results}
    judged = [o for o in stats if o.observable in named and any(w.window == "fault" for w in o.windows)]
    no_effect = [o.observable for o in judged if no_measurable_effect(o.windows)]
    if judged and len(no_effect) == len(judged) and verdict.verdict == "confirmed":
        verdict = verdict.model_copy(update={"reason": f"{verdict.reason}; the fault had no measurable effect on "
                                             f"{', '.join(no_effect)}: a low-information confirmation"})
    return RunResults(
        run_id=run.record.run_id, campaign=run.record.campaign, fingerprint=fp, started_at=run.record.started_at,
        status=run.record.status, overall=verdict,
        low_information=bool(reports) and (all(e.flags.low_information for e in reports)
                                           or (bool(judged) and len(no_effect) == len(judged))),
        no_effect=no_effect,
        warnings=weak_expectations(run.campaign) if run.campaign is not None else [],
        drift=any(e.flags.drift for e in reports),
        aborted={s.name: s.reason for s in run.record.stages if s.status == "aborted"},
        rollback_problems=rollback_problems(run), expectations=reports,
        error_budget={str(e.data.get("phase")): {**e.data, "message": e.message}
                      for e in run.record.events if e.kind == "error-budget" and e.data.get("phase")},
        observables=stats)
