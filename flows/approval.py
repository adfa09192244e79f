"""Deciding approval-required stages: pause the flow run for input, ask on the terminal, or approve."""

from __future__ import annotations

from typing import Literal

from prefect.input import RunInput

from blueprints.campaign import Stage
from blueprints.record import Approval
from tasks.run.ops import Approver, auto_approve
from tasks.run.recorder import now


class ApprovalInput(RunInput):
    """The decision an operator gives a paused stage."""

    decision: Literal["go", "skip", "abort"] = "go"
    comment: str = ""
    by: str = ""


def pause_approver(stage: Stage) -> Approval:
    """Pause the flow run until someone resumes it with an ApprovalInput; a timeout decides abort."""
    from prefect import pause_flow_run
    from prefect.exceptions import FlowPauseTimeout

    try:
        answer: ApprovalInput | None = pause_flow_run(
            wait_for_input=ApprovalInput,
            timeout=max(1, int(stage.approval_timeout.total_seconds())),
            poll_interval=1,
            key=f"approve-{stage.name}",
        )
    except FlowPauseTimeout:
        return Approval(decision="timeout", comment="no decision before approval_timeout", at=now())
    if answer is None:
        return Approval(decision="abort", comment="no input received", at=now())
    return Approval(decision=answer.decision, by=answer.by, comment=answer.comment, at=now())


_TERMINAL_ANSWERS: dict[str, Literal["go", "skip", "abort"]] = {"go": "go", "skip": "skip", "abort": "abort"}


def prompt_approver(stage: Stage) -> Approval:
    """Ask on the terminal: go, skip or abort (end of input decides abort)."""
    import typer

    question = (
        f"Stage {stage.name!r} needs approval ({len(stage.faults)} fault(s): "
        + ", ".join(f.kind for f in stage.faults)
        + "). go / skip / abort?"
    )
    try:
        answer = str(typer.prompt(question, default="abort")).strip().lower()
    except (EOFError, typer.Abort):
        answer = "abort"
    decision = _TERMINAL_ANSWERS.get(answer, "abort")
    comment = "" if decision == answer else f"answered {answer!r}"
    return Approval(decision=decision, by="terminal", comment=comment, at=now())


def approver(mode: Literal["pause", "auto", "prompt"]) -> Approver:
    """The approver for a CampaignParams.approval mode."""
    return {"pause": pause_approver, "auto": auto_approve, "prompt": prompt_approver}[mode]
