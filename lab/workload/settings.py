"""Settings of the workload pods, read from the pod's environment (``PodContext.env``)."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field


class _Env(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Self:
        """Build from a pod's env dict (unknown variables are ignored)."""
        return cls.model_validate(env)


class ModelServerSettings(_Env):
    """Env of a ``lab/model-server`` pod."""

    port: int = Field(8080, alias="PORT", ge=0, le=65535)
    compute_ms: float = Field(20.0, alias="COMPUTE_MS", ge=0)
    model_name: str = Field("lab-llm", alias="MODEL_NAME")


class GatewaySettings(_Env):
    """Env of a ``lab/gateway`` pod."""

    port: int = Field(8080, alias="PORT", ge=0, le=65535)
    model_service: str = Field("model.default.svc.cluster.local", alias="MODEL_SERVICE")
    dns_server: str = Field("127.96.0.10:53", alias="DNS_SERVER")
    model_port: int = Field(8080, alias="MODEL_PORT", ge=1, le=65535)
    upstream_timeout: float = Field(2.0, alias="UPSTREAM_TIMEOUT", gt=0)
    dns_timeout: float = Field(2.0, alias="DNS_TIMEOUT", gt=0)
    dns_attempts: int = Field(2, alias="DNS_ATTEMPTS", ge=1, le=5)
    client_ttl_cap: float | None = Field(None, alias="CLIENT_TTL_CAP", ge=0)

    @property
    def dns_address(self) -> tuple[str, int]:
        """(ip, port) of the DNS server (port 53 when omitted)."""
        host, _, port = self.dns_server.rpartition(":")
        return (host, int(port)) if host else (self.dns_server, 53)


class LoadGenSettings(_Env):
    """Env of a ``lab/loadgen`` pod."""

    rate: float = Field(20.0, alias="RATE", gt=0)
    target_url: str = Field("http://127.0.0.1:8080/v1/infer", alias="TARGET_URL")
    max_inflight: int = Field(64, alias="MAX_INFLIGHT", ge=1)
    request_timeout: float = Field(5.0, alias="REQUEST_TIMEOUT", gt=0)


class ListStormSettings(_Env):
    """Env of a ``lab/list-storm`` pod (the 2024-12-11 telemetry service)."""

    resource: str = Field("pods", alias="RESOURCE")
    rate: float = Field(1.0, alias="RATE", gt=0)
    concurrency: int = Field(1, alias="CONCURRENCY", ge=1)
    watch_churn: bool = Field(False, alias="WATCH_CHURN")
    request_timeout: float = Field(60.0, alias="REQUEST_TIMEOUT", gt=0)
    max_retry_after: float = Field(30.0, alias="MAX_RETRY_AFTER", gt=0)
    backoff_initial: float = Field(0.8, alias="BACKOFF_INITIAL", gt=0)
    backoff_max: float = Field(30.0, alias="BACKOFF_MAX", gt=0)
