"""Running one campaign, in the order it happens.

- ``connect.py``: reach the target; build the run's :class:`~tasks.faults.base.FaultContext` and plain Ops.
- ``runner.py``: :class:`~tasks.run.runner.CampaignRunner` owns the run: plan and preflight, baseline, setup,
  each stage, final recovery, cooldown, and the rollback of whatever is still in place.
- ``stage.py``: :class:`~tasks.run.stage.StageRun`, one stage (approval, plan/ledger/inject/verify, observe under
  guardrails, roll back, recover), and the quiet windows between.
- ``guardrails.py``: the watcher thread that evaluates guardrails while a stage's faults are in place.
- ``ops.py``: what the runner sequences (plain functions, or the Prefect tasks of ``tasks/steps.py``), the
  approver, and rolling back what is in place.
- ``recorder.py``: the run's events, windows and outcomes, built into the campaign record.
- ``budget.py``: the error-budget gate preflight checks, and what the run consumed of it.
"""
