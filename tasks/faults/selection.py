"""Shared by fault behaviours: choosing objects Chaos-Mesh style, checking the blast radius, naming things.

Pure functions (plus read-only cluster counts): ``choose`` picks from a sorted candidate list,
``check_blast_radius`` compares what a fault touches with the blueprint's caps, in count and percent.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from tasks.errors import BlastRadiusExceeded, TargetError

if TYPE_CHECKING:
    from kubernetes.client import V1ObjectMeta

    from blueprints.campaign import BlastRadius
    from blueprints.common import _Selecting
    from tasks.faults.base import FaultContext, Injection

T = TypeVar("T")
MANAGED_BY = {"app.kubernetes.io/managed-by": "gameday"}


def picker(ctx: FaultContext, run_id: str, stage: str, fault_id: str) -> random.Random:
    """The random source a fault's selector picks with: seeded by the context's selection seed (else the run id),
    the stage and the fault id, so planning again over the same candidates picks the same targets."""
    return random.Random(f"{ctx.selection_seed or run_id}/{stage}/{fault_id}")


def committed(ctx: FaultContext, stage: str, fault_id: str) -> frozenset[str]:
    """The targets the run's plan named for a fault (empty before the run has planned)."""
    return frozenset(ctx.committed.get(f"{stage}/{fault_id}", ()))


def choose(candidates: Sequence[T], selector: _Selecting, rng: random.Random | None = None, *,
           keep: Collection[str] = (), key: Callable[[T], str] = str) -> list[T]:
    """The candidates a selector picks (mode one/all/fixed/fixed-percent), in candidate order: those whose ``key``
    is in ``keep`` (the plan's) first, the rest drawn with ``rng`` from the others."""
    n = selector.count(len(candidates))
    if n >= len(candidates):
        return list(candidates)
    kept = [i for i, c in enumerate(candidates) if key(c) in keep][:n]
    others = [i for i in range(len(candidates)) if i not in set(kept)]
    picked = sorted(kept + (rng or random.Random()).sample(others, n - len(kept)))
    return [candidates[i] for i in picked]


def blast_radius_problems(radius: BlastRadius | None, *, nodes: int, pods: int, total_nodes: int,
                          total_pods: int, gpus: int = 0) -> list[str]:
    """Every cap the given counts exceed (empty when within the radius or no radius is declared)."""
    if radius is None:
        return []
    out: list[str] = []

    def pct(part: int, whole: int) -> float:
        return 100.0 * part / whole if whole else (100.0 if part else 0.0)

    if radius.max_nodes is not None and nodes > radius.max_nodes:
        out.append(f"{nodes} node(s) > max_nodes {radius.max_nodes}")
    if radius.max_nodes_percent is not None and pct(nodes, total_nodes) > radius.max_nodes_percent:
        out.append(f"{nodes}/{total_nodes} nodes ({pct(nodes, total_nodes):.1f}%) > max_nodes_percent "
                   f"{radius.max_nodes_percent:g}%")
    if radius.max_pods is not None and pods > radius.max_pods:
        out.append(f"{pods} pod(s) > max_pods {radius.max_pods}")
    if radius.max_pods_percent is not None and pct(pods, total_pods) > radius.max_pods_percent:
        out.append(f"{pods}/{total_pods} pods ({pct(pods, total_pods):.1f}%) > max_pods_percent "
                   f"{radius.max_pods_percent:g}%")
    if radius.max_gpus is not None and gpus > radius.max_gpus:
        out.append(f"{gpus} GPU(s) > max_gpus {radius.max_gpus}")
    return out


def check_blast_radius(ctx: FaultContext, what: str, *, nodes: int = 0, pods: int = 0,
                       gpus: int = 0) -> dict[str, int]:
    """Raise BlastRadiusExceeded if touching ``nodes``/``pods``/``gpus`` exceeds ctx.blast_radius; return the counts."""
    counts = {"nodes": nodes, "pods": pods, "gpus": gpus, "total_nodes": 0, "total_pods": 0}
    radius = ctx.blast_radius
    if radius is None or (nodes == 0 and pods == 0 and gpus == 0):
        return counts
    if nodes and (radius.max_nodes_percent is not None):
        counts["total_nodes"] = len(ctx.cluster.list_nodes())
    if pods and (radius.max_pods_percent is not None):
        counts["total_pods"] = len(ctx.cluster.list_pods())
    problems = blast_radius_problems(radius, nodes=nodes, pods=pods, total_nodes=counts["total_nodes"],
                                     total_pods=counts["total_pods"], gpus=gpus)
    if problems:
        raise BlastRadiusExceeded(f"{what} exceeds the blast radius: " + "; ".join(problems))
    return counts


def k8s_name(*parts: str, limit: int = 63) -> str:
    """A DNS-1123 label built from parts (lower-cased, invalid characters replaced, trimmed)."""
    raw = "-".join(p for p in parts if p).lower()
    name = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")
    return name[:limit].rstrip("-") or "gameday"


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def meta(obj: Any) -> V1ObjectMeta:
    """An API object's metadata (every object the API server returns has it)."""
    found: V1ObjectMeta | None = obj.metadata
    if found is None:
        raise TargetError(f"a {type(obj).__name__} without metadata")
    return found


def name_of(obj: Any) -> str:
    """An API object's name."""
    return str(meta(obj).name or "")


def namespace_of(obj: Any) -> str:
    """A namespaced API object's namespace."""
    return str(meta(obj).namespace or "")


def labels_of(obj: Any) -> dict[str, str]:
    """An object's metadata.labels (empty dict when none)."""
    return dict(getattr(obj.metadata, "labels", None) or {})


def touched_by(targets: Sequence[str]) -> dict[str, set[str]]:
    """The distinct nodes, pods and GPUs among targets (``node/<n>``, ``pod/<ns>/<name>``, ``gpu/<node>/<index>``)."""
    found: dict[str, set[str]] = {"nodes": set(), "pods": set(), "gpus": set()}
    for target in targets:
        kind, _, name = target.partition("/")
        if kind in ("node", "pod", "gpu"):
            found[kind + "s"].add(name)
    return found


def touched(injections: list[Injection]) -> dict[str, set[str]]:
    """The distinct nodes, pods and GPUs a set of planned faults touch, from their targets."""
    return touched_by([t for inj in injections for t in inj.targets])


def check_stage_blast_radius(ctx: FaultContext, stage: str, injections: list[Injection]) -> dict[str, int]:
    """Raise BlastRadiusExceeded if a stage's faults, all in place at once, touch more distinct nodes, pods or GPUs
    together than ctx.blast_radius allows (each may be within it alone); return the counts."""
    found = touched(injections)
    if len(injections) < 2:
        return {k: len(v) for k, v in found.items()}
    return check_blast_radius(ctx, f"stage {stage!r} ({len(injections)} faults together)",
                              nodes=len(found["nodes"]), pods=len(found["pods"]), gpus=len(found["gpus"]))
