"""The campaign format: pydantic models, ``load()``/``parse()``, the JSON Schema and the stock library.

This package knows no cluster: validating a blueprint needs nothing but this package (and, for PromQL
syntax, ``promtool`` when installed).
"""

from blueprints.campaign import BlastRadius, Campaign, Observable, Stage, Target
from blueprints.errors import BlueprintError
from blueprints.faults import FAULT_KINDS, XID_ACTIONS, Fault
from blueprints.hypothesis import Expectation, Hypothesis
from blueprints.loader import load, parse
from blueprints.overrides import Intensity, Overrides
from blueprints.probes import Guardrail, Probe, Tolerance

__all__ = [
    "FAULT_KINDS", "XID_ACTIONS", "BlastRadius", "BlueprintError", "Campaign", "Expectation", "Fault", "Guardrail",
    "Hypothesis", "Intensity", "Observable", "Overrides", "Probe", "Stage", "Target", "Tolerance", "load", "parse",
]
