"""The ``chaostoolkit`` probe: any CTK probe (python/process/http provider) run through chaoslib.

Whatever the extension code raises becomes :class:`ProbeError` (the probe could not be evaluated). With
no tolerance the probe passes when the activity ran; otherwise chaoslib's own ``within_tolerance``
decides, so CTK tolerances (values, ranges, regex/jsonpath/probe dicts) keep their meaning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from tasks.errors import ActivityFailed, ProbeError

if TYPE_CHECKING:
    from blueprints.probes import ChaosToolkitProbe
    from tasks.probes import ProbeContext, ProbeResult


class CtkProvider(BaseModel):
    """How an activity runs: its ``type`` and that provider's own fields (``module``/``func``, ``path``, ``url``,
    ``arguments`` ...), kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Literal["python", "process", "http"]


class CtkActivity(BaseModel):
    """One Chaos Toolkit activity as chaoslib runs it: ``type`` (action or probe), ``name`` and ``provider``; its
    other fields (``timeout``, ``pauses``, ``tolerance`` ...) are kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    name: str
    provider: CtkProvider


def run_activity(activity: CtkActivity, configuration: dict[str, Any], secrets: dict[str, Any]) -> Any:
    """Validate and run one CTK activity; any failure becomes ActivityFailed."""
    from chaoslib.activity import ensure_activity_is_valid  # type: ignore[import-untyped]
    from chaoslib.activity import run_activity as ctk_run

    body = activity.model_dump()
    try:
        ensure_activity_is_valid(body)
        return ctk_run(body, configuration, secrets)
    except Exception as e:
        raise ActivityFailed(f"chaostoolkit activity {activity.name!r} failed: {type(e).__name__}: {e}") from e


def evaluate(spec: ChaosToolkitProbe, ctx: ProbeContext) -> ProbeResult:
    """Run the probe through chaoslib and apply its tolerance."""
    from chaoslib.hypothesis import within_tolerance  # type: ignore[import-untyped]

    from tasks.probes import ProbeResult

    activity = CtkActivity.model_validate({"type": "probe", "name": spec.name, "provider": dict(spec.provider),
                                           "timeout": spec.timeout.total_seconds()})
    try:
        value = run_activity(activity, ctx.configuration, ctx.secrets)
    except ActivityFailed as e:
        raise ProbeError(str(e)) from e
    if spec.tolerance is None:
        return ProbeResult(ok=True, value=value, message=f"{spec.name}: ran")
    try:
        ok = bool(within_tolerance(spec.tolerance, value, ctx.configuration, ctx.secrets))
    except Exception as e:
        raise ProbeError(f"{spec.name}: tolerance could not be checked: {e}") from e
    return ProbeResult(ok=ok, value=value, message=f"{spec.name}: {'within' if ok else 'outside'} tolerance")
