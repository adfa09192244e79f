"""control-plane-overload: a LIST storm against the API server, from the runner or from every node.

Blast radius: the whole control plane (every client of the API server slows down or gets 429s);
``daemonset-storm`` also puts one pod on every selected node (counted as pods). Undo, from the ledger:
- ``client-storm``: a separate process (``tasks.faults.storm``) tagged ``<run>/<fault>``; rollback stops
  every process with that tag (found by its command line, so reconcile in a fresh process can too). It runs
  under its own identity: in the lab the ``telemetry`` service account (its token from the lab's users file,
  or on the real control plane from the TokenRequest API); on a real cluster ``GAMEDAY_STORM_TOKEN``, else the
  runner's own token (then break-glass protects the storm too, and the evidence says so).
- ``daemonset-storm``: rollback deletes the DaemonSet, and the namespace only if this fault created it.
- ``ballast`` (either mode): that many ConfigMaps labelled ``gameday.dev/ballast=<run>-<fault>`` are created in
  the storm's namespace before the storm, so each cluster-wide LIST of configmaps is expensive (APF charges it
  more seats and the server more work, as in a big cluster); rollback deletes them by that label in one call,
  after the storm stops, and the namespace only if this fault created it.
- break-glass (``breakglass.py``) is opened before either storm and closed after the storm is stopped.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NotRequired, TypedDict

from pydantic import BaseModel, Field, RootModel

from blueprints.faults import ControlPlaneOverload
from tasks.cluster_ops import Manifest
from tasks.errors import Conflict, GamedayError, NotFound
from tasks.faults.base import Change, Evidence, FaultContext, Injection, Undo, undo_of, with_undo
from tasks.faults.breakglass import breakglass_name, close_breakglass, open_breakglass
from tasks.faults.selection import MANAGED_BY, check_blast_radius, k8s_name, name_of, now
from tasks.faults.storm import StormConfig, StormStats
from tasks.faults.storm_process import read_stats, start_storm, stop_storm
from tasks.settings import Settings

STORM_USER = "system:serviceaccount:telemetry:telemetry"
BALLAST_LABEL = "gameday.dev/ballast"


def ballast_configmap(name: str, index: int, label: str, size: int) -> Manifest:
    """One ballast ConfigMap: ``size`` bytes of data, labelled for deletion by its fault."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{name}-{index:05d}", "labels": {**MANAGED_BY, BALLAST_LABEL: label}},
            "data": {"ballast": "x" * size}}


def create_ballast(cluster: Any, namespace: str, label: str, count: int, size: int) -> None:
    """Create the ballast ConfigMaps, eight at a time; one that exists already is kept (its names are this run's
    and fault's own: a create whose answer was lost, the server OOM-killed mid-call, is retried into a 409)."""

    def create(index: int) -> None:
        try:
            cluster.create_configmap(namespace, ballast_configmap(label, index, label, size))
        except Conflict:
            pass

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(count)))


def _lab_tokens(users_file: Path) -> dict[str, str]:
    """username → bearer token from the lab's users file (``{token: {"username": ..., ...}}``); none if it
    cannot be read."""
    try:
        users = json.loads(users_file.read_text())
    except (OSError, ValueError):
        return {}
    return {str(info.get("username")): str(token) for token, info in users.items()}


def storm_identity(cluster: Any, settings: Settings) -> tuple[str | None, str, str]:
    """(token, username, note) the client storm runs as; see the module docstring for the choice."""
    lab = getattr(cluster, "lab", None)
    if lab:
        by_name = _lab_tokens(lab.users_file)
        if STORM_USER in by_name:
            return by_name[STORM_USER], STORM_USER, "lab telemetry service account"
        try:  # the real control plane's lab: the telemetry account exists, its tokens come from TokenRequest
            return cluster.request_token(*STORM_USER.rsplit(":", 2)[1:]), STORM_USER, "lab telemetry service account"
        except NotFound:
            pass
        sa = sorted(n for n in by_name if n.startswith("system:serviceaccount:"))
        if sa:
            return by_name[sa[0]], sa[0], "a lab service account (no telemetry SA found)"
    if settings.storm_token is not None:
        return settings.storm_token.get_secret_value(), "GAMEDAY_STORM_TOKEN", "dedicated storm token"
    return (cluster.connection().token, cluster.whoami(),
            "runner's own token: break-glass, if on, protects the storm too")


def storm_daemonset(name: str, spec: ControlPlaneOverload) -> Manifest:
    """The DaemonSet whose pods each LIST ``spec.resource`` in a loop at ``per_pod_rate``."""
    labels = {**MANAGED_BY, "app": name}
    return {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": dict(spec.node_selector),
                    **({"serviceAccountName": spec.service_account} if spec.service_account else {}),
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [{"name": "storm", "image": spec.image, "env": [
                        {"name": "RATE", "value": f"{spec.per_pod_rate:g}"},
                        {"name": "RESOURCE", "value": spec.resource},
                        *([{"name": "BACKOFF_MAX", "value": f"{spec.client_backoff_max.total_seconds():g}"}]
                          if spec.client_backoff_max is not None else [])]}],
                },
            },
        },
    }


class _Overload(Undo):
    """What both modes record."""

    breakglass: str | None
    """The name of the break-glass FlowSchema and priority level; None without break-glass."""
    runner_user: str
    """Whom break-glass reserves seats for."""
    tag: str
    """``<run>/<fault>``."""
    ballast: str | None = None
    """The label value of the ballast ConfigMaps; None without ballast."""


class ClientStormUndo(_Overload):
    """client-storm: the storm process is found by its tag."""

    mode: Literal["client-storm"]
    stats_path: str
    namespace: str | None = None
    """The ballast's namespace (set with ballast)."""
    created_namespace: bool = False
    storm_identity: str | None = None
    """Whom the storm ran as (set by inject)."""
    identity_note: str | None = None


class DaemonsetStormUndo(_Overload):
    """daemonset-storm: the DaemonSet (and the ballast) in ``namespace``."""

    mode: Literal["daemonset-storm"]
    namespace: str
    daemonset: str
    created_namespace: bool
    """The fault created the namespace (rollback deletes it)."""


class ControlPlaneOverloadUndo(RootModel[Annotated[ClientStormUndo | DaemonsetStormUndo,
                                                   Field(discriminator="mode")]]):
    """client-storm: every process tagged <run>/<fault> is stopped; daemonset-storm: the DaemonSet is deleted;
    ballast ConfigMaps are deleted by label; break-glass is closed after the storm stops; a namespace the fault
    created is deleted

    One model per mode, told apart by ``mode``.
    """


class RunnerCall(TypedDict):
    """One timed call of the runner's during the storm (evidence that break-glass works)."""

    ok: bool
    ms: float
    nodes: NotRequired[int]
    error: NotRequired[str]


class ControlPlaneOverloadFault:
    """Behaviour of the control-plane-overload kind."""

    kind: ClassVar[str] = "control-plane-overload"
    blast_radius: ClassVar[str] = (
        "the whole control plane (every client of the API server slows down or gets 429s); daemonset-storm "
        "also puts one pod on every selected node (counted as pods)"
    )
    undo: ClassVar[type[BaseModel]] = ControlPlaneOverloadUndo
    leased: ClassVar[bool] = False

    def plan(self, spec: ControlPlaneOverload, ctx: FaultContext, *, run_id: str, stage: str,
             fault_id: str) -> Injection:
        """Name the storm, the break-glass objects and (daemonset) the nodes it lands on."""
        c = ctx.cluster
        runner = c.whoami() or ctx.runner_user
        bg = breakglass_name(run_id) if spec.break_glass else None
        tag = f"{run_id}/{fault_id}"
        changes: list[Change] = []
        if bg:
            changes.append(Change(action="create", object=f"{bg} (PriorityLevelConfiguration + FlowSchema)",
                                  detail=f"reserved seats for {runner}", undo="delete both after the storm stops"))
        targets: list[str] = []
        label: str | None = None
        created_namespace = False
        if spec.ballast:
            label = k8s_name("ballast", run_id, fault_id)
            created_namespace = not c.namespace_exists(spec.namespace)
            changes.append(Change(action="create", object=f"{spec.ballast} ConfigMaps in {spec.namespace}",
                                  detail=f"{spec.ballast_bytes} B each, labelled {BALLAST_LABEL}={label}",
                                  undo="delete them by label (and the namespace if created)"))
        undo: ClientStormUndo | DaemonsetStormUndo
        if spec.mode == "client-storm":
            stats_dir = ctx.settings.state_dir / "storm"
            undo = ClientStormUndo(mode=spec.mode, breakglass=bg, runner_user=runner, tag=tag, ballast=label,
                                   namespace=spec.namespace if label else None,
                                   created_namespace=created_namespace,
                                   stats_path=str((stats_dir / f"{k8s_name(run_id, fault_id)}.json").resolve()))
            changes.append(Change(action="local", object=f"storm process tagged {tag}",
                                  detail=f"LIST {spec.resource} at {spec.rate:g}/s, concurrency {spec.concurrency}",
                                  undo="stop the process (found by its tag)"))
        else:
            nodes = c.list_nodes(spec.node_selector)
            check_blast_radius(ctx, "daemonset-storm", pods=len(nodes))
            name = k8s_name("gameday-storm", run_id, fault_id)
            undo = DaemonsetStormUndo(mode=spec.mode, breakglass=bg, runner_user=runner, tag=tag, ballast=label,
                                      namespace=spec.namespace, daemonset=name,
                                      created_namespace=not c.namespace_exists(spec.namespace))
            targets = [f"pod/{spec.namespace}/{name}@{name_of(n)}" for n in nodes]  # one pod on each node
            changes.append(Change(action="create", object=f"apps/v1 DaemonSet {spec.namespace}/{name}",
                                  detail=f"{len(nodes)} pod(s) LISTing {spec.resource} at {spec.per_pod_rate:g}/s"
                                         + (f" as {spec.namespace}/{spec.service_account}" if spec.service_account
                                            else ""),
                                  undo="delete it (and the namespace if created)"))
        return Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind,
                         spec=spec.model_dump(mode="json"), summary=f"control-plane overload ({spec.mode})",
                         targets=targets, changes=changes, undo=undo.model_dump(mode="json"), planned_at=now())

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Open break-glass, then start the storm."""
        spec = ControlPlaneOverload.model_validate(injection.spec)
        u, c = undo_of(injection, ControlPlaneOverloadUndo).root, ctx.cluster
        if u.breakglass:
            open_breakglass(c, u.breakglass, u.runner_user)
        if u.ballast and u.namespace:
            created = c.ensure_namespace(u.namespace, dict(MANAGED_BY))
            create_ballast(c, u.namespace, u.ballast, spec.ballast, spec.ballast_bytes)
            u = u.model_copy(update={"created_namespace": u.created_namespace or created})
        if isinstance(u, ClientStormUndo):
            token, user, note = storm_identity(c, ctx.settings)
            conn = c.connection()
            Path(u.stats_path).parent.mkdir(parents=True, exist_ok=True)
            cfg = StormConfig(url=conn.url, token=token, verify=conn.verify, ca_cert=conn.ca_cert,
                              resource=spec.resource, rate=spec.rate, concurrency=spec.concurrency,
                              ramp_up_s=spec.ramp_up.total_seconds(), watch_churn=spec.watch_churn,
                              max_seconds=ctx.timeouts.storm_max_s,
                              stats_path=u.stats_path, identity=user)
            process = start_storm(cfg, u.tag)
            started = with_undo(injection, u.model_copy(update={"storm_identity": user, "identity_note": note}))
            started._process = process
            return started
        created = c.ensure_namespace(u.namespace, dict(MANAGED_BY))
        u = u.model_copy(update={"created_namespace": u.created_namespace or created})
        c.create_daemonset(u.namespace, storm_daemonset(u.daemonset, spec))
        return with_undo(injection, u)

    def _runner_call(self, ctx: FaultContext) -> RunnerCall:
        start = time.monotonic()
        try:
            n = len(ctx.cluster.list_nodes())
            return {"ok": True, "ms": round((time.monotonic() - start) * 1000, 1), "nodes": n}
        except GamedayError as e:
            return {"ok": False, "ms": round((time.monotonic() - start) * 1000, 1), "error": str(e)}

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Storm stats show 429s or higher latency, and a runner call during the storm succeeded (timed)."""
        u = undo_of(injection, ControlPlaneOverloadUndo).root
        deadline = time.monotonic() + ctx.timeouts.verify_s
        if isinstance(u, ClientStormUndo):
            ramp = ControlPlaneOverload.model_validate(injection.spec).ramp_up.total_seconds()
            while True:
                stats: StormStats = read_stats(u.stats_path) or {}
                slow = stats.get("p50_ms", 0) > 2 * max(stats.get("baseline_p50_ms", 0), 1.0)
                pressured = stats.get("throttled_429", 0) > 0 or slow
                if (pressured and stats.get("elapsed_s", 0) >= min(ramp, 2.0)) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            runner = self._runner_call(ctx)
            summary = (f"{stats.get('achieved_rate', 0)}/{stats.get('target_rate', 0)} LIST/s, "
                       f"p50 {stats.get('p50_ms')} ms (baseline {stats.get('baseline_p50_ms')} ms), "
                       f"p99 {stats.get('p99_ms')} ms, 429s {stats.get('throttled_429', 0)}; runner call "
                       f"{'ok' if runner['ok'] else 'FAILED'} in {runner['ms']} ms")
            return Evidence(landed=pressured and runner["ok"], summary=summary,
                            details={"storm": stats, "runner_call": runner, "identity": u.storm_identity,
                                     "identity_note": u.identity_note, "breakglass": u.breakglass})
        while True:
            try:
                ds = ctx.cluster.read_daemonset(u.namespace, u.daemonset)
                desired = int((ds.status.desired_number_scheduled if ds.status else 0) or 0)
            except NotFound:
                desired = 0
            pods = [p for p in ctx.cluster.list_pods([u.namespace], {"app": u.daemonset})
                    if p.spec and p.spec.node_name and p.status and p.status.phase == "Running"]
            if (pods and len(pods) >= max(desired, len(injection.targets))) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        runner = self._runner_call(ctx)
        nodes = sorted({str(p.spec.node_name) for p in pods if p.spec})
        return Evidence(landed=bool(pods) and runner["ok"],
                        summary=f"{len(pods)} running storm pod(s) on {len(nodes)} of {len(injection.targets)} "
                                f"targeted node(s) (desired {desired}); "
                                f"runner call {'ok' if runner['ok'] else 'FAILED'} in {runner['ms']} ms",
                        details={"pods": len(pods), "nodes": nodes, "desired": desired, "runner_call": runner})

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Stop the storm first (the DaemonSet and its pods), then close break-glass; tolerant of what is gone."""
        u, c = undo_of(injection, ControlPlaneOverloadUndo).root, ctx.cluster
        if isinstance(u, ClientStormUndo):
            stopped = stop_storm(u.tag, injection._process)
            ctx.log(f"control-plane-overload {injection.fault_id}: stopped storm pid(s) {stopped or 'none'}")
        else:
            c.delete_daemonset(u.namespace, u.daemonset)
            # Its pods go at once too, in one call: waiting for the garbage collector means one DELETE per
            # pod through an API server the storm may still be overwhelming.
            gone = c.delete_pods(u.namespace, {"app": u.daemonset})
            ctx.log(f"control-plane-overload {injection.fault_id}: deleted {gone} storm pod(s)")
        if u.ballast and u.namespace:
            gone = c.delete_configmaps(u.namespace, {BALLAST_LABEL: u.ballast})
            ctx.log(f"control-plane-overload {injection.fault_id}: deleted {gone} ballast ConfigMap(s)")
        if u.created_namespace and u.namespace:
            c.delete_namespace(u.namespace)
        if u.breakglass:
            close_breakglass(c, u.breakglass)

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Nothing to renew."""
