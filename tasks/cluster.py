"""A narrow facade over the official ``kubernetes`` client: only the calls faults, probes and the ledger make.

Every call goes through :meth:`Cluster.call`, which maps API errors to gameday's typed errors: 404 →
:class:`NotFound`, 409 → :class:`Conflict`, 429/5xx and connection failures → :class:`TemporaryError`
(``delay`` from ``Retry-After``), any other refusal → :class:`TargetError`. Resource-specific calls live
in :mod:`tasks.cluster_ops` (mixed in here) so that each module stays small.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import urllib3  # not a client: the kubernetes client lets its connection errors through (wraps only SSLError)
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field

from tasks.cluster_ops import ClusterOps, Manifest
from tasks.errors import Conflict, NotFound, TargetError, TemporaryError

if TYPE_CHECKING:
    from blueprints.campaign import Target
    from tasks.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)
_RETRIES_429 = 3
FORBIDDEN_RETRY_S = 15.0
"""How long a 403 is retried by a client that rides out API server outages: a kube-apiserver that has just
restarted (OOM-killed in a storm) answers 403 until its RBAC informers have synced, for a few seconds."""


@dataclass(frozen=True)
class Connection:
    """How to reach the API server directly (for the storm's own HTTP client)."""

    url: str
    token: str | None
    verify: bool
    ca_cert: str | None


def map_api_error(err: ApiException, what: str) -> Exception:
    """The typed error for an ``ApiException`` raised while doing ``what``."""
    status = int(err.status or 0)
    reason = f"{what}: HTTP {status} {err.reason or ''}".strip()
    headers = err.headers or {}
    retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        delay = float(retry_after) if retry_after is not None else 1.0
    except ValueError:
        delay = 1.0
    if status == 404:
        return NotFound(reason)
    if status == 409:
        return Conflict(reason)
    if status == 429 or status >= 500 or status == 0:
        return TemporaryError(reason, delay=delay)
    return TargetError(reason)


class LabEndpoints(BaseModel):
    """What the runner uses of the lab's ``endpoints.json``: where the lab's parts listen (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    dir: Path
    kubeconfig: Path | None = None
    runner_context: str | None = None
    prometheus: str | None = None
    dns: str | None = Field(default=None, description="kube-dns's address, ip:port")
    users: Path | None = Field(default=None, description="the API server's static token file, as JSON")

    @property
    def users_file(self) -> Path:
        """The lab's users (token → name and groups)."""
        return self.users or self.dir / "users.json"


def read_lab_endpoints(lab_dir: Path) -> LabEndpoints:
    """The lab's ``endpoints.json`` (TargetError naming the fix when the lab is not up)."""
    path = lab_dir / "endpoints.json"
    if not path.exists():
        raise TargetError(f"the lab is not running: {path} is missing (start it with `python -m lab up`)")
    try:
        return LabEndpoints.model_validate({"dir": lab_dir, **json.loads(path.read_text())})
    except (OSError, ValueError) as e:
        raise TargetError(f"cannot read {path}: {e}") from e


def _runner_context(kubeconfig: Path) -> str | None:
    """In a kubeconfig with several contexts, the one whose user is the gameday runner."""
    try:
        doc = yaml.safe_load(kubeconfig.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise TargetError(f"cannot read kubeconfig {kubeconfig}: {e}") from e
    for ctx in doc.get("contexts") or []:
        if "gameday-runner" in str((ctx.get("context") or {}).get("user", "")):
            return str(ctx["name"])
    return None


class Cluster(ClusterOps):
    """One target cluster, reached through the official client."""

    def __init__(self, api_client: k8s.ApiClient, user: str = "", lab: LabEndpoints | None = None,
                 timeout: float = 10.0, outage_retry_s: float = 0.0) -> None:
        self.api_client = api_client
        self.kubeconfig_user = user
        self.lab = lab
        self.timeout = timeout
        self.outage_retry_s = outage_retry_s
        self.reached = False
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.net = k8s.NetworkingV1Api(api_client)
        self.coord = k8s.CoordinationV1Api(api_client)
        self.flow = k8s.FlowcontrolApiserverV1Api(api_client)
        self.authn = k8s.AuthenticationV1Api(api_client)

    @classmethod
    def from_kubeconfig(cls, path: str | Path | None, context: str | None = None, *, timeout: float = 10.0,
                        lab: LabEndpoints | None = None, outage_retry_s: float = 0.0) -> Cluster:
        """A cluster from a kubeconfig file and context (None: the current context)."""
        cfg_path = Path(path).expanduser() if path else Path("~/.kube/config").expanduser()
        try:
            configuration = k8s.Configuration()
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(cfg_path), context=context, client_configuration=configuration, persist_config=False)
            contexts, current = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                config_file=str(cfg_path))
            chosen = next((c for c in contexts if c["name"] == context), current) if context else current
            user = str((chosen or {}).get("context", {}).get("user", ""))
        except (OSError, k8s_config.ConfigException, KeyError, ValueError) as e:
            raise TargetError(f"cannot load kubeconfig {cfg_path} (context {context or 'current'}): {e}") from e
        return cls(k8s.ApiClient(configuration), user=user, lab=lab, timeout=timeout, outage_retry_s=outage_retry_s)

    @classmethod
    def for_target(cls, target: Target, settings: Settings) -> Cluster:
        """The cluster a blueprint target names: the lab (from its endpoints.json) or a kubeconfig context."""
        if target.is_lab:
            lab = read_lab_endpoints(settings.lab_dir)
            kubeconfig = Path(target.kubeconfig or lab.kubeconfig or settings.lab_dir / "kubeconfig")
            context = settings.kube_context or lab.runner_context or _runner_context(kubeconfig)
            return cls.from_kubeconfig(kubeconfig, context, timeout=settings.request_timeout_s, lab=lab,
                                       outage_retry_s=settings.api_outage_retry_s)
        kubeconfig_path = target.kubeconfig or settings.kubeconfig
        return cls.from_kubeconfig(kubeconfig_path, target.cluster, timeout=settings.request_timeout_s,
                                   outage_retry_s=settings.api_outage_retry_s)

    # -- plumbing ---------------------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one API call with a timeout, retrying 429 briefly, mapping failures to typed errors.

        Once the server has answered, a connection failure (the API server restarting, OOM-killed) is retried
        for up to ``outage_retry_s`` seconds; a server never reached fails at once. With ``outage_retry_s`` on, a
        403 is retried for up to ``FORBIDDEN_RETRY_S`` too (a restarted server's authorizer is not yet synced).
        """
        kwargs.setdefault("_request_timeout", self.timeout)
        throttled, outage_deadline, forbidden_deadline = 0, None, None
        while True:
            try:
                result = fn(*args, **kwargs)
                self.reached = True
                return result
            except ApiException as e:
                self.reached = True
                err = map_api_error(e, what)
                throttled += 1
                if int(e.status or 0) == 429 and throttled < _RETRIES_429:
                    time.sleep(min(getattr(err, "delay", 1.0), 2.0))
                    continue
                if int(e.status or 0) == 403 and self.outage_retry_s > 0:
                    now = time.monotonic()
                    if forbidden_deadline is None:
                        forbidden_deadline = now + min(self.outage_retry_s, FORBIDDEN_RETRY_S)
                        log.warning("%s: HTTP 403; retrying for up to %.0f s (an API server that has just restarted "
                                    "denies until its RBAC caches have synced)", what, forbidden_deadline - now)
                    if now < forbidden_deadline:
                        time.sleep(0.5)
                        continue
                raise err from e
            except (urllib3.exceptions.HTTPError, OSError) as e:
                now = time.monotonic()
                if outage_deadline is None and self.reached and self.outage_retry_s > 0:
                    outage_deadline = now + self.outage_retry_s
                    log.warning("%s: the API server is unreachable (%s); retrying for up to %.0f s",
                                what, type(e).__name__, self.outage_retry_s)
                if outage_deadline is not None and now < outage_deadline:
                    time.sleep(0.2)  # be among the first back when it listens again
                    continue
                raise TemporaryError(f"{what}: {type(e).__name__}: {e}", delay=1.0) from e

    def to_dict(self, obj: Any) -> Manifest:
        """A client model as the plain JSON dict the API server sent (camelCase keys)."""
        out: Manifest = self.api_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
        return out

    def connection(self) -> Connection:
        """URL, bearer token and TLS settings of this client."""
        c = self.api_client.configuration
        auth = (c.api_key or {}).get("authorization") or (c.api_key or {}).get("BearerToken") or ""
        token = auth.split(" ", 1)[1] if auth.lower().startswith("bearer ") else (auth or None)
        return Connection(url=str(c.host).rstrip("/"), token=token, verify=bool(c.verify_ssl),
                          ca_cert=c.ssl_ca_cert)

    def whoami(self) -> str:
        """The username the API server sees (SelfSubjectReview; falls back to the kubeconfig user)."""
        try:
            review = self.call("whoami", self.authn.create_self_subject_review, {
                "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
            info = review.status.user_info if review.status else None
            if info is not None and info.username:
                return str(info.username)
        except (NotFound, TargetError):
            pass
        return self.kubeconfig_user

    def close(self) -> None:
        """Release the client's connection pool."""
        self.api_client.close()  # type: ignore[no-untyped-call]
