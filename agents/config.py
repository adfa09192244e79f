"""The agent's configuration: CLI flags → :class:`AgentConfig` (the only place agent settings come from).

``python -m agents --listen 127.0.0.1:9470 --node gpu-1 --api-url https://... --api-token-file ...
--allow-user gameday-runner [--authorize allowlist|sar|any] --allow-cidr 192.0.2.0/24 --kmsg-path /dev/kmsg
--state-file ...``
``--authorize``: ``allowlist`` (the allow-list only), ``sar`` (a Kubernetes SubjectAccessReview only; no
allow-list) or ``any`` (either says yes; the default when an allow-list is given). Without an allow-list,
``--authorize sar`` must be given explicitly. Credentials for TokenReview/SubjectAccessReview come from ``--api-url`` + ``--api-token-file``/``--api-ca-file``, from
``--kubeconfig`` (server, token, CA of the current context) or from ``--in-cluster`` (the pod's
service account).
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import tempfile
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from agents.access import MODES, Mode
from agents.auth import ApiCredentials
from agents.errors import AgentFailure
from agents.limits import Limits
from agents.protocol import MAX_TTL_SECONDS

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
IN_CLUSTER_URL = "https://kubernetes.default.svc"


class ConfigError(AgentFailure):
    """The agent was started with flags that do not make sense."""


class AgentConfig(BaseModel):
    """Everything the agent process needs."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    host: str = "0.0.0.0"
    port: int = Field(default=9470, ge=0, le=65535)
    node: str
    api: ApiCredentials
    allow_users: frozenset[str] = frozenset()
    allow_groups: frozenset[str] = frozenset()
    authorize: Mode = "any"
    limits: Limits = Limits()
    kmsg_path: Path = Path("/dev/kmsg")
    kmsg_nsenter: bool | None = None
    state_file: Path = Path("/var/lib/gameday-agent/state.json")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    nvml: Literal["real", "fake", "none"] = "real"
    gpu_count: int = Field(default=8, ge=0, le=16)
    nvml_state_file: Path | None = None
    netns: str | None = None
    dcgmi: str | None = None
    auth_cache_seconds: float = 10.0
    ready_file: Path | None = None
    audiences: tuple[str, ...] = ()


def _kubeconfig(path: Path) -> ApiCredentials:
    cfg = yaml.safe_load(path.read_text())
    ctx_name = cfg.get("current-context")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    ca: Path | None = Path(cluster["certificate-authority"]) if cluster.get("certificate-authority") else None
    if cluster.get("certificate-authority-data"):
        with tempfile.NamedTemporaryFile(prefix="gameday-agent-ca-", suffix=".crt", delete=False) as tmp:
            tmp.write(base64.b64decode(cluster["certificate-authority-data"]))
        ca = Path(tmp.name)
    token_file = Path(user["tokenFile"]) if user.get("tokenFile") else None
    return ApiCredentials(url=cluster["server"], token=user.get("token"), token_file=token_file, ca_file=ca,
                          insecure=bool(cluster.get("insecure-skip-tls-verify")))


def _merge_allow_file(ns: argparse.Namespace) -> None:
    try:
        doc = yaml.safe_load(ns.allow_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"--allow-file {ns.allow_file}: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) - {"users", "groups", "cidrs", "interfaces"}:
        raise ConfigError(f"--allow-file {ns.allow_file}: expected a mapping with users, groups, cidrs, interfaces")
    for key, dest in (("users", "allow_user"), ("groups", "allow_group"), ("cidrs", "allow_cidr"),
                      ("interfaces", "allow_interface")):
        getattr(ns, dest).extend(str(v) for v in doc.get(key) or [])


def parser() -> argparse.ArgumentParser:
    """The CLI."""
    p = argparse.ArgumentParser(prog="python -m agents", description="gameday node agent")
    a = p.add_argument
    a("--listen", default="0.0.0.0:9470", help="HOST:PORT (port 0 picks a free one; see --ready-file)")
    a("--node", required=True, help="the node this agent runs on")
    a("--api-url", help="the Kubernetes API server (for TokenReview and SubjectAccessReview)")
    a("--api-token-file", type=Path, help="the agent's own bearer token")
    a("--api-ca-file", type=Path, help="CA bundle for the API server")
    a("--api-insecure", action="store_true", help="do not verify the API server's certificate (lab only)")
    a("--kubeconfig", type=Path, help="take API url/token/CA from this kubeconfig's current context")
    a("--in-cluster", action="store_true", help="use the pod's service account")
    a("--allow-user", action="append", default=[], help="username allowed to call (repeatable)")
    a("--allow-group", action="append", default=[], help="group allowed to call (repeatable)")
    a("--allow-cidr", action="append", default=[], help="CIDR partition peers must lie in (repeatable)")
    a("--allow-interface", action="append", default=[], help="interface a partition may name (repeatable)")
    a("--authorize", choices=list(MODES), help="allowlist | sar (SubjectAccessReview only) | any (allow-list or "
      "SubjectAccessReview; default with an allow-list)")
    a("--allow-file", type=Path, help="YAML {users, groups, cidrs, interfaces} lists, added to the flags")
    a("--max-ttl", type=float, default=600.0, help=f"longest lease in seconds (≤ {MAX_TTL_SECONDS:g})")
    a("--max-faults", type=int, default=32)
    a("--kmsg-path", type=Path, default=Path("/dev/kmsg"))
    a("--kmsg-nsenter", choices=["auto", "yes", "no"], default="auto", help="write via nsenter -t 1 -m")
    a("--state-file", type=Path, default=Path("/var/lib/gameday-agent/state.json"))
    a("--tls-cert", type=Path)
    a("--tls-key", type=Path)
    a("--nvml", choices=["real", "fake", "none"], default="real")
    a("--gpu-count", type=int, default=8, help="fake GPUs (with --nvml fake)")
    a("--nvml-state-file", type=Path, help="fake NVML: mirror GPU state to this JSON file")
    a("--netns", help="apply firewall rules inside this network namespace (ip netns exec)")
    a("--dcgmi", help="path of dcgmi (default: looked up on PATH)")
    a("--auth-cache-seconds", type=float, default=10.0)
    a("--audience", action="append", default=[], help="accept only tokens issued for this audience (TokenRequest; "
      "repeatable; the stock DaemonSet: gameday-agent)")
    a("--ready-file", type=Path, help="write the agent's URL here once it listens")
    return p


def _mode(ns: argparse.Namespace) -> Mode:
    listed = bool(ns.allow_user or ns.allow_group)
    mode: Mode | None = ns.authorize or ("any" if listed else None)
    if mode is None:
        raise ConfigError("give at least one --allow-user or --allow-group, or --authorize sar (RBAC decides through "
                          "SubjectAccessReviews): otherwise nobody may call the agent")
    if mode != "sar" and not listed:
        raise ConfigError(f"--authorize {mode} needs at least one --allow-user or --allow-group")
    if mode == "sar" and listed:
        raise ConfigError("--authorize sar asks only the cluster's SubjectAccessReview: drop --allow-user/--allow-group "
                          "(and the allow-file's users/groups), or use --authorize any to accept either")
    return mode


def parse(argv: list[str] | None = None) -> AgentConfig:
    """Parse flags into a config; ConfigError when they are inconsistent."""
    ns = parser().parse_args(argv)
    if ns.allow_file is not None:
        _merge_allow_file(ns)
    host, _, port = ns.listen.rpartition(":")
    if ns.kubeconfig:
        api = _kubeconfig(ns.kubeconfig)
    elif ns.in_cluster:
        api = ApiCredentials(url=ns.api_url or IN_CLUSTER_URL, token_file=SA_DIR / "token", ca_file=SA_DIR / "ca.crt")
    elif ns.api_url:
        api = ApiCredentials(url=ns.api_url, token_file=ns.api_token_file, ca_file=ns.api_ca_file,
                             insecure=ns.api_insecure)
    else:
        raise ConfigError("give --api-url (+ --api-token-file), --kubeconfig or --in-cluster: tokens are checked "
                          "with the cluster's TokenReview API")
    mode = _mode(ns)
    if bool(ns.tls_cert) != bool(ns.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together")
    if not 0 < ns.max_ttl <= MAX_TTL_SECONDS:
        raise ConfigError(f"--max-ttl must be in (0, {MAX_TTL_SECONDS:g}]")
    try:
        cidrs = tuple(ipaddress.ip_network(c, strict=False) for c in ns.allow_cidr)
    except ValueError as exc:
        raise ConfigError(f"--allow-cidr: {exc}") from exc
    return AgentConfig(
        host=host or "0.0.0.0", port=int(port), node=ns.node, api=api,
        allow_users=frozenset(ns.allow_user), allow_groups=frozenset(ns.allow_group), authorize=mode,
        limits=Limits(max_ttl_seconds=ns.max_ttl, allowed_cidrs=cidrs,
                      allowed_interfaces=tuple(ns.allow_interface), max_active=ns.max_faults),
        kmsg_path=ns.kmsg_path, kmsg_nsenter={"auto": None, "yes": True, "no": False}[ns.kmsg_nsenter],
        state_file=ns.state_file, tls_cert=ns.tls_cert, tls_key=ns.tls_key, nvml=ns.nvml,
        gpu_count=ns.gpu_count, nvml_state_file=ns.nvml_state_file, netns=ns.netns, dcgmi=ns.dcgmi,
        auth_cache_seconds=ns.auth_cache_seconds, ready_file=ns.ready_file, audiences=tuple(ns.audience),
    )
