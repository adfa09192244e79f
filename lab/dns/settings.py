"""The CoreDNS pod's settings, read from the pod's environment (``PodContext.env``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CoreDnsSettings(BaseModel):
    """Environment of a ``lab/coredns`` pod."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    port: int = Field(1053, alias="PORT", ge=0, le=65535)
    corefile_configmap: str = Field("kube-system/coredns", alias="COREFILE_CONFIGMAP")
    corefile_key: str = Field("Corefile", alias="COREFILE_KEY")
    corefile: str | None = Field(None, alias="COREFILE")
    startup_sync_timeout: float = Field(5.0, alias="STARTUP_SYNC_TIMEOUT", ge=0)

    @classmethod
    def from_env(cls, env: dict[str, str]) -> CoreDnsSettings:
        """Build from a pod's env dict (unknown variables are ignored)."""
        return cls.model_validate(env)

    @property
    def configmap(self) -> tuple[str, str]:
        """(namespace, name) of the Corefile ConfigMap."""
        ns, _, name = self.corefile_configmap.rpartition("/")
        return ns or "kube-system", name
