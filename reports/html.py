"""The single self-contained HTML report: header and verdict, timeline, expectations, observables, faults, blueprint.

plotly.js is inlined once (the file opens offline); figures travel as one JSON block and are drawn by a small
script that, once every chart is drawn, sets ``data-charts-ready`` on ``<body>`` and ``data-points`` on each chart
(headless tests read them).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import yaml
from plotly.offline import get_plotlyjs

from blueprints.record import FaultOutcome
from reports.figures import Fig
from reports.frames import Run
from reports.results import RunResults
from reports.stats import ObservableStats

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#212121;background:#fafafa}
main{max-width:1400px;margin:0 auto;padding:16px 24px}
h1{font-size:24px;margin:8px 0}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
h3{font-size:15px;margin:18px 0 6px}
.problem{background:#b71c1c;color:#fff;padding:10px 24px;font-weight:600}
.verdict{display:inline-block;padding:4px 12px;border-radius:4px;color:#fff;font-weight:700;text-transform:uppercase}
.confirmed{background:#2e7d32}.refuted{background:#c62828}.inconclusive{background:#f9a825;color:#212121}
.chip{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:2px;vertical-align:middle}
.meta{color:#555}.flag{background:#fff3e0;border-left:4px solid #ef6c00;padding:6px 10px;margin:6px 0}
.abort{background:#fff8e1;border-left:4px solid #f9a825;padding:6px 10px;margin:6px 0}
table{border-collapse:collapse;margin:6px 0;background:#fff}td,th{border:1px solid #e0e0e0;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:3fr 2fr;gap:8px}.chart{background:#fff;border:1px solid #e0e0e0;min-height:340px}
pre{background:#fff;border:1px solid #e0e0e0;padding:8px;overflow:auto;max-height:420px;font-size:12px}
details>summary{cursor:pointer;font-weight:600}.bad{color:#b71c1c}
"""
_JS = """
(function(){
  var figs = JSON.parse(document.getElementById('gd-figs').textContent);
  var cfg = {displaylogo: false, responsive: true};
  Promise.all(figs.map(function(f, i){
    return Plotly.newPlot('fig-' + i, f.data, f.layout, cfg).then(function(gd){
      var n = 0; (gd.calcdata || []).forEach(function(c){ n += c.length; });
      gd.setAttribute('data-points', String(n)); gd.setAttribute('data-traces', String(gd.data.length));
    });
  })).then(function(){ document.body.setAttribute('data-charts-ready', String(figs.length)); },
           function(e){ document.body.setAttribute('data-charts-error', String(e)); });
})();
"""


def fmt(x: float | None, digits: int = 4) -> str:
    """A number for a table cell ('—' when missing)."""
    if x is None:
        return "—"
    return f"{x:.{digits}g}"


def _verdict(v: str) -> str:
    return f'<span class="verdict {v}">{escape(v)}</span>'


def _header(run: Run, res: RunResults) -> str:
    rec = run.record
    out = [f'<div class="problem">⚠ Rollback problem: {escape(p)}</div>' for p in res.rollback_problems]
    out.append("<main>")
    out.append(f"<h1>{escape(rec.campaign)} {_verdict(res.overall.verdict)}</h1>")
    out.append(f"<p><b>Why:</b> {escape(res.overall.reason)}</p>")
    if run.campaign:
        out.append(f"<p><b>Hypothesis:</b> {escape(run.campaign.hypothesis.belief)}</p>")
    if rec.description:
        out.append(f"<p class=meta>{escape(rec.description)}</p>")
    out.append(
        f'<p class=meta>run <b>{escape(rec.run_id)}</b> · status {escape(rec.status)}{" (dry run)" if rec.dry_run else ""}'
        f" · started {rec.started_at:%Y-%m-%d %H:%M:%S} UTC by {escape(rec.started_by or '?')} · owner "
        f"{escape(rec.owner or '?')} · {(rec.ended_at - rec.started_at).total_seconds():.0f} s<br>target "
        f"<b>{escape(rec.target.cluster)}</b> {escape(rec.target.api_server)} · topology fingerprint "
        f"<code>{escape(rec.target.fingerprint or '?')}</code></p>")
    if res.error_budget:
        said = " ".join(escape(m[:1].upper() + m[1:].rstrip(".")) + "."
                        for k in ("before", "after") if k in res.error_budget
                        for m in [str(res.error_budget[k]["message"])])
        out.append(f"<p><b>Error budget:</b> {said}</p>")
    for stage, why in res.aborted.items():
        out.append(f'<div class="abort"><b>Stage {escape(stage)} aborted:</b> {escape(why or "no reason given")}</div>')
    for f in rec.setup:
        if not f.verified:
            out.append(f'<div class="abort"><b>Setup change {escape(f.id)} was not in place:</b> no stage ran, '
                       "so nothing was proven.</div>")
    for st in rec.stages:
        for f in st.faults:
            if f.injected_at is not None and not f.verified:
                out.append(f'<div class="abort"><b>Fault {escape(f.id)} in stage {escape(st.name)} was not verified to '
                           "have landed:</b> that stage's expectations are inconclusive (see its evidence below).</div>")
    if rec.error:
        out.append(f'<div class="abort"><b>Run error:</b> {escape(rec.error)}</div>')
    for w in res.warnings:
        out.append(f'<div class="flag"><b>Could not refute:</b> {escape(w)}</div>')
    if res.no_effect:
        out.append(f'<div class="flag"><b>No measurable effect</b> on {escape(", ".join(res.no_effect))}: its fault '
                   "windows are statistically indistinguishable from the baseline (autocorrelation-corrected "
                   "Mann–Whitney p ≥ 0.05 and negligible Cliff's delta).</div>")
    if res.low_information:
        out.append('<div class="flag"><b>Low-information run:</b> every expectation was already confirmed on the last '
                   "runs on this topology, or the fault had no measurable effect; raise the intensity or try "
                   "another blueprint.</div>")
    if res.drift:
        out.append('<div class="flag"><b>Topology drift:</b> the target changed since an expectation was last '
                   "confirmed; this run re-establishes it.</div>")
    return "\n".join(out)


def _expectations(res: RunResults) -> str:
    rows = [("<table><tr><th>#</th><th>expectation</th><th>per window: measured / threshold (n)</th>"
             "<th>verdict</th><th>why</th><th>history (newest first)</th></tr>")]
    for e in res.expectations:
        r = e.result
        per = "<br>".join(f"{escape(s.stage or s.window)}: {fmt(s.measured)} / {fmt(s.threshold)} ({s.n}) "
                          f"<small>{escape(s.verdict)}</small>" for s in r.stages)
        chips = "".join(f'<span class="chip {h.verdict}" title="{escape(h.run_id)} {h.started_at:%Y-%m-%d} '
                        f'{escape(h.verdict)}"></span>' for h in e.history[:20]) or "<small>no earlier runs</small>"
        flag = f'<div class="flag">{escape(e.flags.reason)}</div>' if e.flags.reason else ""
        rows.append(f"<tr><td>{r.index + 1}</td><td><code>{escape(r.text)}</code></td><td>{per}</td>"
                    f"<td>{_verdict(r.verdict)}</td><td>{escape(r.reason)}</td><td>{chips}{flag}</td></tr>")
    return "\n".join(rows) + "</table>"


def _compare(results: list[RunResults]) -> str:
    texts = [e.result.text for e in results[0].expectations]
    head = "".join(f"<th>{escape(t)}</th>" for t in texts)
    rows = [f"<table><tr><th>run</th><th>started</th><th>status</th><th>verdict</th>{head}</tr>"]
    for r in results:
        by = {e.result.text: e.result.verdict for e in r.expectations}
        cells = "".join(f"<td>{_verdict(by[t]) if t in by else '—'}</td>" for t in texts)
        rows.append(f"<tr><td>{escape(r.run_id)}</td><td>{r.started_at:%Y-%m-%d %H:%M}</td><td>{escape(r.status)}</td>"
                    f"<td>{_verdict(r.overall.verdict)}</td>{cells}</tr>")
    return "\n".join(rows) + "</table>"


def stats_table(s: ObservableStats) -> str:
    """The statistics table of one observable."""
    cols = ("window", "n (effective)", "p50", "p95", "p99", "mean", "amplification ×", "p99 amplification ×",
            "Mann–Whitney p (raw / autocorrelation-corrected)", "Cliff's δ", "outside baseline band",
            "SLO violations/min", "time to recover")
    rows = ["<table><tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for w in s.windows:
        ttr = "—" if w.recovered is None else f"{w.time_to_recover_s:.1f} s" if w.recovered else "not recovered"
        share = "—" if w.anomaly_share is None else f"{100 * w.anomaly_share:.1f}%"
        cells = [fmt(w.summary.p50), fmt(w.summary.p95), fmt(w.summary.p99), fmt(w.summary.mean),
                 fmt(w.amplification, 3), fmt(w.p99_amplification, 3),
                 f"{fmt(w.mwu_p, 2)} / {fmt(w.mwu_p_adjusted, 2)}", fmt(w.cliffs_delta, 2), share,
                 fmt(w.slo_violations_per_min, 3), ttr]
        n_eff = "" if w.n_eff is None else f" ({w.n_eff:.0f})"
        rows.append(f"<tr><td>{escape(w.window)} {escape(w.stage or '')}</td><td class=n>{w.summary.n}{n_eff}</td>"
                    + "".join(f"<td class=n>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(rows) + "</table>"


def _faults(run: Run) -> str:
    out = []
    if run.record.setup:
        out.append("<h3>Setup — held from before the baseline to after the final recovery</h3>")
        out += [_fault(f) for f in run.record.setup]
    for s in run.record.stages:
        appr = f" · approval: {escape(s.approval.decision)} by {escape(s.approval.by or '?')}" if s.approval else ""
        out.append(f"<h3>Stage {escape(s.name)} — {escape(s.status)}{appr}</h3>")
        if s.reason:
            out.append(f"<p>{escape(s.reason)}</p>")
        out += [_fault(f) for f in s.faults]
    return "\n".join(out)


def _fault(f: FaultOutcome) -> str:
    """One fault's (or setup change's) landing, rollback, evidence and plan."""
    landed = "✔ verified" if f.verified else '<b class="bad">✘ NOT verified: its expectations are inconclusive</b>'
    rb = ("—" if f.rollback_ok is None else "ok" if f.rollback_ok else
          f'<b class="bad">FAILED: {escape(f.rollback_error or "")}</b>')
    head = (f"<p><b>{escape(f.id)}</b> ({escape(f.kind)}): {landed}; injected "
            f"{f.injected_at:%H:%M:%S} · rollback {rb}</p>" if f.injected_at else
            f"<p><b>{escape(f.id)}</b> ({escape(f.kind)}): not injected</p>")
    return (head + f"<details open><summary>evidence of landing</summary><pre>{escape(json.dumps(f.evidence, indent=1, default=str))}"
            f"</pre></details><details><summary>plan</summary><pre>"
            f"{escape(json.dumps(f.plan, indent=1, default=str))}</pre></details>")


def _events(run: Run) -> str:
    rows = ["<table><tr><th>time (UTC)</th><th>event</th><th>stage</th><th>fault</th><th>message</th></tr>"]
    rows += [f"<tr><td>{e.at:%H:%M:%S.%f}</td><td>{escape(e.kind)}</td><td>{escape(e.stage or '')}</td>"
             f"<td>{escape(e.fault or '')}</td><td>{escape(e.message)}</td></tr>" for e in run.record.events]
    return "\n".join(rows) + "</table>"


def render(run: Run, res: RunResults, timeline: Fig, per_observable: list[tuple[Fig, Fig]],
           compared: list[RunResults]) -> str:
    """The whole report as one HTML string."""
    figs: list[Fig] = [timeline]
    body = [_header(run, res), "<h2 id=timeline>Timeline</h2>", '<div class="chart" id="fig-0"></div>',
            "<h2 id=expectations>Hypothesis expectations</h2>", _expectations(res)]
    if compared:
        body += ["<h2>Compared runs</h2>", _compare([res, *compared])]
    body.append("<h2>Observables</h2><p class=meta>Time axis: seconds since each run's first injection (runs line up)."
                " Grey: baseline, red: fault, green: recovery. Statistics use every sample; charts are downsampled."
                "</p>")
    for s, (series_fig, ecdf_fig) in zip(res.observables, per_observable, strict=True):
        if not series_fig["data"]:
            body.append(f'<h3>{escape(s.observable)}</h3><div class="abort">No samples of {escape(s.observable)} were '
                        "recorded in this run: check its query against the target's Prometheus.</div>")
            continue
        i = len(figs)
        figs += [series_fig, ecdf_fig]
        body.append(f'<h3>{escape(s.observable)}</h3><div class="charts"><div class="chart" id="fig-{i}"></div>'
                    f'<div class="chart" id="fig-{i + 1}"></div></div>{stats_table(s)}')
    blueprint = run.record.blueprint_text or yaml.safe_dump(run.record.blueprint, sort_keys=False)
    body += ["<h2 id=faults>Faults: landing evidence and plan</h2>", _faults(run),
             f"<h2>Events</h2><details><summary>{len(run.record.events)} events</summary>{_events(run)}</details>",
             f"<h2>Blueprint</h2><pre>{escape(blueprint)}</pre></main>"]
    payload = json.dumps(figs, separators=(",", ":"), allow_nan=False, default=_nan).replace("</", "<\\/")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{escape(run.record.campaign)} — "
            f"{escape(res.overall.verdict)}</title><style>{_CSS}</style><script>{get_plotlyjs()}</script></head>"
            f"<body>{''.join(body)}<script type=application/json id=gd-figs>{payload}</script><script>{_JS}</script>"
            "</body></html>")


def _nan(o: Any) -> Any:
    return str(o)
