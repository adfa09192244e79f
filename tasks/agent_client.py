"""The runner's side of the node agents: find a node's agent, call it, and the shared agent-held fault logic.

- :class:`AgentHttp` calls one agent (``agents/protocol.py`` models both ways; errors → AgentError /
  AgentUnreachable).
- :class:`AgentClient` (what ``FaultContext.agents`` holds) finds the agent of a node: the node's
  annotation ``gameday.dev/agent-endpoint`` first (the lab), else the ``gameday-agent`` DaemonSet pod
  in namespace ``gameday`` on that node (pod IP + port). Calls carry the runner's bearer token.
- :class:`AgentHeldFault` is the plan/inject/verify/rollback/renew shared by gpu-xid, gpu-degrade and
  nccl-partition (iptables/nft modes): one agent fault per target node, same agent fault id on each.
  Rollback reverts on every node; an unreachable agent is logged, not fatal: its lease expires and the
  agent reverts on its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import urllib3
from pydantic import BaseModel, ValidationError

from agents.protocol import (
    DeviceList,
    ErrorBody,
    FaultParams,
    FaultStatus,
    InjectRequest,
    LeaseRenewal,
    RevertAll,
    RevertResult,
)
from tasks.errors import AgentError, InjectionFailed, RollbackFailed, TargetError, TemporaryError

if TYPE_CHECKING:
    from tasks.faults.base import Evidence, FaultContext, Injection

# tasks.faults.* is imported inside the methods below: tasks/faults/__init__ imports the fault modules,
# which import this module, so importing tasks.faults here would be circular when this module comes first.

ENDPOINT_ANNOTATION = "gameday.dev/agent-endpoint"
PCI_ANNOTATION = "gameday.dev/gpu-pci-{index}"
AGENT_NAMESPACE = "gameday"
AGENT_LABELS = {"app.kubernetes.io/name": "gameday-agent"}
M = TypeVar("M", bound=BaseModel)


class AgentUnreachable(TemporaryError):
    """The agent could not be reached (connection refused, timeout, no agent pod on the node)."""


def _safe(s: str, limit: int = 128) -> str:
    out = re.sub(r"[^A-Za-z0-9._:-]", "-", s).lstrip("._:-") or "x"
    return out[:limit]


def agent_ids(injection: Injection) -> tuple[str, str]:
    """The (fault_id, run_id) an injection uses on its agents: unique per run, stage and fault."""
    digest = hashlib.sha256(f"{injection.run_id}/{injection.stage}/{injection.fault_id}".encode()).hexdigest()[:12]
    return f"{_safe(injection.fault_id, 100)}-{digest}", _safe(injection.run_id)


class AgentHttp:
    """One agent's HTTP API."""

    def __init__(self, url: str, token: str | None, *, ca_file: str | None = None, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        kw: dict[str, Any] = {"ca_certs": ca_file, "cert_reqs": "CERT_REQUIRED"} if ca_file else {}
        self._http = urllib3.PoolManager(retries=False, **kw)

    def _call(self, method: str, path: str, model: type[M], body: BaseModel | None = None,
              missing_ok: bool = False) -> M | None:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = body.model_dump_json().encode() if body is not None else None
        try:
            resp = self._http.request(method, self.url + path, body=data, headers=headers, timeout=self.timeout)
        except urllib3.exceptions.HTTPError as e:
            raise AgentUnreachable(f"agent {self.url} unreachable: {e}") from e
        if resp.status == 404 and missing_ok:
            return None
        if resp.status >= 300:
            try:
                err = ErrorBody.model_validate_json(resp.data)
                detail = f"{err.error}: {err.message}"
            except ValidationError:
                detail = resp.data[:300].decode(errors="replace")
            if resp.status == 503:
                raise AgentUnreachable(f"agent {self.url} answered {resp.status} {detail}")
            raise AgentError(f"agent {self.url} refused {method} {path}: HTTP {resp.status} {detail}")
        try:
            return model.model_validate(json.loads(resp.data))
        except (ValueError, ValidationError) as e:
            raise AgentError(f"agent {self.url} answered {method} {path} with an unexpected body: {e}") from e

    def inject(self, req: InjectRequest) -> FaultStatus:
        """POST /v1/faults."""
        out = self._call("POST", "/v1/faults", FaultStatus, req)
        assert out is not None
        return out

    def status(self, fault_id: str) -> FaultStatus | None:
        """GET /v1/faults/{id} with evidence; None when the agent does not hold it."""
        return self._call("GET", f"/v1/faults/{fault_id}", FaultStatus, missing_ok=True)

    def renew(self, fault_id: str, ttl: float) -> FaultStatus | None:
        """POST /v1/faults/{id}/renew; None when the fault is no longer held (it expired)."""
        return self._call("POST", f"/v1/faults/{fault_id}/renew", FaultStatus, LeaseRenewal(ttl_seconds=ttl),
                          missing_ok=True)

    def revert(self, fault_id: str) -> RevertResult:
        """DELETE /v1/faults/{id} (idempotent)."""
        out = self._call("DELETE", f"/v1/faults/{fault_id}", RevertResult)
        assert out is not None
        return out

    def revert_all(self, run_id: str | None = None) -> RevertAll:
        """DELETE /v1/faults[?run_id=]."""
        out = self._call("DELETE", "/v1/faults" + (f"?run_id={run_id}" if run_id else ""), RevertAll)
        assert out is not None
        return out

    def devices(self) -> DeviceList:
        """GET /v1/devices."""
        out = self._call("GET", "/v1/devices", DeviceList)
        assert out is not None
        return out


class AudienceToken:
    """The runner's token for agents: issued by the cluster for one audience (TokenRequest for a service account),
    requested again a minute before it expires, so the runner never sends its own cluster token to an agent."""

    def __init__(self, cluster: Any, account: str, audience: str, seconds: int = 600) -> None:
        self.cluster, self.audience, self.seconds = cluster, audience, seconds
        self.namespace, _, self.name = account.partition("/")
        self._token: tuple[str, float] | None = None

    def get(self) -> str:
        """A token with more than a minute left (the API server issues at least the lifetime asked for); when
        asking again fails (an overloaded API server during a rollback), the old token while it is still valid."""
        now = time.time()
        if self._token is None or self._token[1] - now < 60:
            try:
                token = self.cluster.request_token(self.namespace, self.name, self.seconds, audience=self.audience)
            except Exception:
                if self._token is None or self._token[1] - time.time() < 5:
                    raise
                return self._token[0]
            self._token = (token, now + self.seconds)
        return self._token[0]


class AgentClient:
    """Finds and calls the agent of a node (``FaultContext.agents``)."""

    def __init__(self, cluster: Any, token: str | AudienceToken | None, *, port: int = 9470, scheme: str = "https",
                 ca_file: str | None = None, timeout: float = 10.0, namespace: str = AGENT_NAMESPACE) -> None:
        self.cluster = cluster
        self.token = token
        self.port = port
        self.scheme = scheme
        self.ca_file = ca_file
        self.timeout = timeout
        self.namespace = namespace

    @classmethod
    def for_cluster(cls, cluster: Any, settings: Any = None) -> AgentClient:
        """The runner's agent client: ``settings.agent_token`` when set, else a token issued for
        ``settings.agent_audience`` (the default, ``gameday-agent``), else the cluster credential's own token;
        HTTPS verified against ``settings.agent_ca_file`` for agents found by their pod's IP."""
        token: str | AudienceToken | None = None
        if settings is not None and getattr(settings, "agent_token", None) is not None:
            token = settings.agent_token.get_secret_value()
        elif settings is not None and getattr(settings, "agent_audience", None):
            token = AudienceToken(cluster, settings.agent_service_account, settings.agent_audience)
        if token is None and hasattr(cluster, "connection"):
            token = cluster.connection().token
        if settings is None:
            return cls(cluster, token)
        ca_file = getattr(settings, "agent_ca_file", None)
        return cls(cluster, token, port=int(getattr(settings, "agent_port", 9470)),
                   scheme=str(getattr(settings, "agent_scheme", "https")), ca_file=str(ca_file) if ca_file else None,
                   timeout=float(getattr(settings, "request_timeout_s", 10.0)))

    def endpoint(self, node: str) -> str:
        """The agent URL of ``node``: its annotation, else the DaemonSet pod's IP."""
        obj = self.cluster.read_node(node)
        annotations = (obj.metadata.annotations or {}) if obj.metadata else {}
        if annotations.get(ENDPOINT_ANNOTATION):
            return str(annotations[ENDPOINT_ANNOTATION]).rstrip("/")
        pods = self.cluster.list_pods([self.namespace], AGENT_LABELS, f"spec.nodeName={node}")
        ips = [p.status.pod_ip for p in pods if p.status and p.status.pod_ip and p.status.phase == "Running"]
        if not ips:
            raise AgentUnreachable(f"no running gameday-agent pod on node {node} (namespace {self.namespace}) and "
                                   f"no {ENDPOINT_ANNOTATION} annotation")
        return f"{self.scheme}://{ips[0]}:{self.port}"

    def node_annotations(self, node: str) -> dict[str, str]:
        """The node's annotations (for PCI addresses)."""
        obj = self.cluster.read_node(node)
        return dict((obj.metadata.annotations or {}) if obj.metadata else {})

    def at(self, url: str) -> AgentHttp:
        """A client for a known agent URL."""
        token = self.token.get() if isinstance(self.token, AudienceToken) else self.token
        return AgentHttp(url, token, ca_file=self.ca_file, timeout=self.timeout)

    def for_node(self, node: str) -> AgentHttp:
        """A client for the agent of ``node``."""
        return self.at(self.endpoint(node))


def agents_of(ctx: FaultContext) -> AgentClient:
    """``ctx.agents``, or one built from the cluster and ``ctx.extra['settings']``."""
    if isinstance(ctx.agents, AgentClient):
        return ctx.agents
    client = AgentClient.for_cluster(ctx.cluster, ctx.extra.get("settings"))
    ctx.agents = client
    return client


class AgentHeldFault:
    """Shared behaviour of faults held by node agents; subclasses say which nodes and which params."""

    kind: ClassVar[str]
    what: ClassVar[str]

    def node_params(self, spec: Any, ctx: FaultContext, node: str) -> FaultParams:
        """The agent params for one node (may read the node, never change it)."""
        raise NotImplementedError

    def pick_nodes(self, spec: Any, ctx: FaultContext) -> list[str]:
        """The target nodes: the spec's selector (labels, optional names), then its mode."""
        from tasks.faults.selection import check_blast_radius, choose

        sel = spec.selector
        if sel is None:
            raise InjectionFailed(f"{self.kind}: this mode needs a node selector naming where the agent acts")
        nodes = sorted(n.metadata.name for n in ctx.cluster.list_nodes(sel.label_selector)
                        if not sel.names or n.metadata.name in sel.names)
        chosen = choose(nodes, sel)
        if not chosen:
            raise TargetError(f"{self.kind}: no node matches {sel.label_selector or sel.names}")
        check_blast_radius(ctx, self.kind, nodes=len(chosen), gpus=len(self.gpus(spec, chosen)))
        return chosen

    def gpus(self, spec: Any, nodes: list[str]) -> list[str]:
        """The GPUs the fault acts on, as ``<node>/<index>`` (none unless the spec names a ``gpu_index``)."""
        index = getattr(spec, "gpu_index", None)
        return [] if index is None else [f"{n}/{index}" for n in nodes]

    def plan(self, spec: Any, ctx: FaultContext, *, run_id: str, stage: str, fault_id: str) -> Injection:
        """Choose the nodes, build each node's request and find each agent (read only)."""
        from tasks.faults.base import Change, Injection
        from tasks.faults.selection import now

        nodes = self.pick_nodes(spec, ctx)
        params = {n: self.node_params(spec, ctx, n).model_dump(mode="json") for n in nodes}
        endpoints = {}
        for n in nodes:
            try:
                endpoints[n] = agents_of(ctx).endpoint(n)
            except AgentUnreachable as e:
                raise TargetError(f"{self.kind}: {e}") from e
        probe = Injection(run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind, spec={}, summary="",
                          planned_at=now())
        afid, arun = agent_ids(probe)
        changes = [Change(action="agent", object=f"node/{n} agent", detail=f"{self.what} (fault {afid})",
                          undo="agent revert (idempotent); else the agent reverts when the lease expires")
                   for n in nodes]
        return Injection(
            run_id=run_id, stage=stage, fault_id=fault_id, kind=self.kind, spec=spec.model_dump(mode="json"),
            summary=f"{self.what} on {len(nodes)} node(s) via agents",
            targets=[f"node/{n}" for n in nodes] + [f"gpu/{g}" for g in self.gpus(spec, nodes)],
            changes=changes, planned_at=now(),
            undo={"agent_fault_id": afid, "agent_run_id": arun, "ttl_seconds": spec.lease.total_seconds(),
                  "params": params, "endpoints": endpoints},
        )

    def _client(self, ctx: FaultContext, injection: Injection, node: str) -> AgentHttp:
        client = agents_of(ctx)
        try:
            return client.for_node(node)
        except AgentUnreachable:
            known = injection.undo.get("endpoints", {}).get(node)
            if known:
                return client.at(known)
            raise

    def inject(self, injection: Injection, ctx: FaultContext) -> Injection:
        """Ask each node's agent to hold the fault under a lease."""
        u = dict(injection.undo)
        endpoints: dict[str, str] = dict(u.get("endpoints") or {})
        for node, params in u["params"].items():
            req = InjectRequest.model_validate({"fault_id": u["agent_fault_id"], "run_id": u["agent_run_id"],
                                                "ttl_seconds": u["ttl_seconds"], "params": params})
            try:
                agent = self._client(ctx, injection, node)
                endpoints[node] = agent.url
                agent.inject(req)
            except (AgentError, AgentUnreachable) as e:
                raise InjectionFailed(f"{self.kind} on node {node}: {e}") from e
        return injection.model_copy(update={"undo": {**u, "endpoints": endpoints}})

    def verify(self, injection: Injection, ctx: FaultContext) -> Evidence:
        """Each agent's read-back (line present / field reads back / chain present)."""
        from tasks.faults.base import Evidence

        u = injection.undo
        per_node: dict[str, Any] = {}
        for node in u["params"]:
            try:
                st = self._client(ctx, injection, node).status(u["agent_fault_id"])
            except (AgentError, AgentUnreachable) as e:
                per_node[node] = {"landed": False, "summary": str(e)}
                continue
            ev = st.evidence if st is not None else None
            per_node[node] = {"landed": bool(ev and ev.landed),
                              "summary": ev.summary if ev else "the agent does not hold this fault",
                              "details": ev.details if ev else {}}
        ok = sum(1 for v in per_node.values() if v["landed"])
        return Evidence(landed=bool(per_node) and ok == len(per_node),
                        summary=f"{self.what}: in place on {ok}/{len(per_node)} node(s)", details={"nodes": per_node})

    def rollback(self, injection: Injection, ctx: FaultContext) -> None:
        """Revert on every node; an unreachable agent is logged (its lease expires); a refusal raises."""
        u = injection.undo
        failed = []
        for node in u.get("params", {}):
            try:
                self._client(ctx, injection, node).revert(u["agent_fault_id"])
            except AgentUnreachable as e:
                ctx.log(f"{self.kind} rollback: agent on {node} unreachable ({e}); its lease "
                        f"({u['ttl_seconds']:g}s) will expire and the agent reverts on its own")
            except AgentError as e:
                failed.append(f"{node}: {e}")
        if failed:
            raise RollbackFailed(f"{self.kind}: " + "; ".join(failed))

    def renew(self, injection: Injection, ctx: FaultContext) -> None:
        """Renew the lease on every node; a fault an agent no longer holds is an error (the stage aborts)."""
        u = injection.undo
        for node in u.get("params", {}):
            st = self._client(ctx, injection, node).renew(u["agent_fault_id"], float(u["ttl_seconds"]))
            if st is None:
                raise AgentError(f"{self.kind}: the agent on {node} no longer holds fault {u['agent_fault_id']} "
                                 "(lease expired and reverted)")
