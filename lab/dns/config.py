"""The typed result of parsing a Corefile: server blocks and the plugin settings the lab honours."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KubernetesConfig(_Model):
    """The ``kubernetes`` plugin: zones it is authoritative for and how it answers."""

    zones: tuple[str, ...]
    ttl: int = 5
    pods: Literal["disabled", "insecure", "verified"] = "disabled"
    fallthrough: tuple[str, ...] | None = None


class CacheConfig(_Model):
    """The ``cache`` plugin: capacities, TTL caps and stale serving."""

    success_capacity: int = 9984
    success_ttl: int = 3600
    success_min_ttl: int = 5
    denial_capacity: int = 9984
    denial_ttl: int = 1800
    denial_min_ttl: int = 5
    serve_stale_s: float | None = None
    stale_refresh: Literal["immediate", "verify"] = "immediate"
    disable_success: tuple[str, ...] = ()
    disable_denial: tuple[str, ...] = ()


class ErraticConfig(_Model):
    """The ``erratic`` plugin: one query in N is dropped, delayed, truncated or SERVFAILed."""

    drop: int = 0
    delay: int = 0
    delay_s: float = 0.1
    truncate: int = 0
    servfail: int = 0


class ForwardConfig(_Model):
    """The ``forward`` plugin: the zone it forwards and its upstreams (only loopback ones are used)."""

    zone: str
    to: tuple[str, ...]
    force_tcp: bool = False
    max_fails: int = 2


class ServerBlock(_Model):
    """One server block: the zones it serves, its port and its plugins."""

    zones: tuple[str, ...]
    port: int = 53
    plugins: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    kubernetes: KubernetesConfig | None = None
    cache: CacheConfig | None = None
    erratic: ErraticConfig | None = None
    forward: ForwardConfig | None = None

    def has(self, plugin: str) -> bool:
        """Whether the block names ``plugin``."""
        return plugin in self.plugins


class Corefile(_Model):
    """A parsed Corefile."""

    blocks: tuple[ServerBlock, ...]

    @property
    def unknown_plugins(self) -> tuple[str, ...]:
        """Every unknown plugin name, in order of appearance, without repeats."""
        return tuple(dict.fromkeys(name for b in self.blocks for name in b.unknown))

    @property
    def uses_kubernetes(self) -> bool:
        """Whether any block has the ``kubernetes`` plugin (readiness then waits for its sync)."""
        return any(b.kubernetes is not None for b in self.blocks)

    @property
    def reload(self) -> bool:
        """Whether any block enables the ``reload`` plugin."""
        return any(b.has("reload") for b in self.blocks)
