"""The runner's side of the node agents: find a node's agent and call it (the faults they hold:
``tasks.faults.agent_held``).

- :class:`AgentHttp` calls one agent (``agents/protocol.py`` models both ways; errors → AgentError /
  AgentUnreachable).
- :class:`AgentClient` (what ``FaultContext.agents`` holds) finds the agent of a node: the node's
  annotation ``gameday.dev/agent-endpoint`` first (the lab), else the ``gameday-agent`` DaemonSet pod
  in namespace ``gameday`` on that node (``https://<pod IP>:<port>``). Calls carry a token issued for the agents'
  audience (:class:`AudienceToken`), or one the settings give.
"""

from __future__ import annotations

import json
import re
import ssl
import time
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from agents.protocol import (
    DeviceList,
    ErrorBody,
    FaultStatus,
    InjectRequest,
    LeaseRenewal,
    RevertAll,
    RevertResult,
)
from tasks.errors import AgentError, TemporaryError

ENDPOINT_ANNOTATION = "gameday.dev/agent-endpoint"
PCI_ANNOTATION = "gameday.dev/gpu-pci-{index}"
AGENT_NAMESPACE = "gameday"
AGENT_LABELS = {"app.kubernetes.io/name": "gameday-agent"}
M = TypeVar("M", bound=BaseModel)


class AgentUnreachable(TemporaryError):
    """The agent could not be reached (connection refused, timeout, no agent pod on the node)."""


def safe_id(s: str, limit: int = 128) -> str:
    """``s`` as an agent fault or run id: the characters the agent protocol allows, at most ``limit``."""
    out = re.sub(r"[^A-Za-z0-9._:-]", "-", s).lstrip("._:-") or "x"
    return out[:limit]


class AgentHttp:
    """One agent's HTTP API; ``close`` it (or use it in a ``with`` block) when done.

    HTTPS is verified with ``tls`` (the system's CAs when not given). No retries, no redirects followed, no
    proxy taken from the environment."""

    def __init__(self, url: str, token: str | None, *, tls: ssl.SSLContext | None = None,
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._http = httpx.Client(verify=tls or ssl.create_default_context(), timeout=timeout,
                                  trust_env=False)

    def close(self) -> None:
        """Close the connection to the agent."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _call(self, method: str, path: str, model: type[M], body: BaseModel | None = None,
              missing_ok: bool = False) -> M | None:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = body.model_dump_json().encode() if body is not None else None
        try:
            resp = self._http.request(method, self.url + path, content=data, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise AgentUnreachable(f"agent {self.url} unreachable: {e}") from e
        if resp.status_code == 404 and missing_ok:
            return None
        if resp.status_code >= 300:
            try:
                err = ErrorBody.model_validate_json(resp.content)
                detail = f"{err.error}: {err.message}"
            except ValidationError:
                detail = resp.content[:300].decode(errors="replace")
            if resp.status_code == 503:
                raise AgentUnreachable(f"agent {self.url} answered {resp.status_code} {detail}")
            raise AgentError(f"agent {self.url} refused {method} {path}: HTTP {resp.status_code} {detail}")
        try:
            return model.model_validate(json.loads(resp.content))
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
        self._tls: ssl.SSLContext | None = None

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

    def check_credential(self) -> None:
        """Obtain the agents' token now, so that a TokenRequest the runner may not make fails when faults are
        planned (preflight), not when they are injected."""
        if isinstance(self.token, AudienceToken):
            self.token.get()

    def at(self, url: str) -> AgentHttp:
        """A client for a known agent URL (HTTPS verified against ``ca_file``, else the system's CAs)."""
        token = self.token.get() if isinstance(self.token, AudienceToken) else self.token
        if self._tls is None:  # loaded once: each AgentHttp would otherwise read the CAs again
            self._tls = ssl.create_default_context(cafile=self.ca_file)
        return AgentHttp(url, token, tls=self._tls, timeout=self.timeout)

    def for_node(self, node: str) -> AgentHttp:
        """A client for the agent of ``node``."""
        return self.at(self.endpoint(node))
