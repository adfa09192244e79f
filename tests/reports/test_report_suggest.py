"""reports.suggest: ranking blueprints by expected information and proposing the next intensity."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from blueprints.campaign import Campaign
from reports.frames import load_run
from reports.history import LOW_INFORMATION_RUNS, HistoryStore
from reports.suggest import propose, rank
from reports.verdicts import evaluate_all, overall
from tests.reports.make_fixture import T0, blueprint, make_run


def _campaign(name: str, **change: Any) -> Campaign:
    bp = blueprint(20, 40, 30)
    bp["name"] = name
    bp.update(change)
    return Campaign.model_validate(bp)


def _record(store: HistoryStore, tmp: Path, scenarios: list[str]) -> str:
    fp = ""
    for i, sc in enumerate(scenarios):
        run = load_run(make_run(tmp / f"{i}", sc, start=T0 + timedelta(hours=i), run_id=f"r{i}", seed=i,
                                observe_s=20, recovery_s=40, baseline_s=30))
        res = evaluate_all(run)
        store.record_run(run.record, res, overall(run, res))
        fp = run.record.target.fingerprint
    return fp


def test_never_run_ranks_first_and_refuted_steps_down(tmp_path: Path) -> None:
    """A never-run blueprint outranks one just run; a refuted run proposes a lower intensity with its reason."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        fp = _record(store, tmp_path, ["refuted"])
        out = rank([("dns", _campaign("dns-outage-drill")), ("new", _campaign("fresh-one"))], store, fp,
                   T0 + timedelta(hours=2))
        assert [s.name for s in out] == ["new", "dns"]
        assert out[0].reasons == ["never run"]
        dns = out[1]
        assert any("refuted" in r for r in dns.reasons)
        assert dns.proposals and all(p.direction == "down" for p in dns.proposals)
        p = next(p for p in dns.proposals if p.path == "stages[0].observe")
        assert p.proposed == p.current / 2


def test_long_confirmed_steps_up_and_drift_raises_rank(tmp_path: Path) -> None:
    """Confirmed N times proposes more intensity (Corefile 'every' lower); a new topology and age raise the score."""
    with HistoryStore(tmp_path / "h.sqlite") as store:
        fp = _record(store, tmp_path, ["confirmed"] * LOW_INFORMATION_RUNS)
        c = _campaign("dns-outage-drill")
        same = rank([("dns", c)], store, fp, T0 + timedelta(days=1))[0]
        assert any("low information" in r for r in same.reasons)
        up = next(p for p in same.proposals if p.path == "stages[1].faults[0].corefile.every")
        assert (up.current, up.proposed, up.direction) == (2, 1, "up")
        moved = rank([("dns", c)], store, "new-topology", T0 + timedelta(days=30))[0]
        assert moved.score > same.score and any("topology changed" in r for r in moved.reasons)
        assert any("long since last run" in r for r in moved.reasons)


def test_propose_uses_fault_intensity_knobs() -> None:
    """Client-storm rate doubles up and halves down; GPU SM clock goes down to be more intense."""
    stage = {"name": "s", "faults": [{"kind": "control-plane-overload", "rate": 40}]}
    c = _campaign("storm", stages=[stage])
    up = propose(c, "s", "up", "e", "why")
    down = propose(c, "s", "down", "e", "why")
    assert up is not None and down is not None
    assert (up.path, up.proposed, down.proposed) == ("stages[0].faults[0].rate", 80, 20)
    gpu = _campaign("gpu", stages=[{"name": "g", "faults": [{"kind": "gpu-degrade", "sm_clock_mhz": 800}]}])
    p = propose(gpu, None, "up", "e", "why")
    assert p is not None and (p.path, p.proposed) == ("stages[0].faults[0].sm_clock_mhz", 400)
