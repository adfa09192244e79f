"""Configuration of one emulated API server."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from lab.apiserver.users import UserInfo


class ApiServerConfig(BaseModel):
    """Everything ``build_app`` needs; the CLI flags map one to one onto these fields."""

    model_config = ConfigDict(extra="forbid")

    users: dict[str, UserInfo] = Field(description="bearer token -> identity")
    seats: int = Field(60, ge=1, description="total APF seats (the real server's 400+200, scaled down)")
    queue_timeout: float = Field(15.0, gt=0, description="seconds a request may wait in an APF queue")
    history: int = Field(10_000, ge=10, description="watch history ring size (events)")
    anonymous_metrics: bool = Field(False, description="serve /metrics without a token")
    bookmark_interval: float = Field(5.0, gt=0, description="seconds between watch BOOKMARK events")
    git_version: str = "v1.32.4-gameday-lab"
    users_file: Path | None = None
    sa_secret_file: Path | None = Field(None, description="secret verifying signed service-account tokens")
    memory_limit: int = Field(0, ge=0, description="modelled heap limit in bytes; past it the server is OOM-killed (0: off)")
    heap_amplification: float = Field(8.0, gt=0, description="heap bytes per byte of listed JSON")
    gc_seconds: float = Field(1.0, gt=0, description="time constant of the modelled garbage collection")
    restart_delay: float = Field(10.0, ge=0, description="first restart delay after an OOM kill, doubling")
    restart_delay_max: float = Field(300.0, ge=0, description="cap of the restart delay")
    cache_init_seconds: float = Field(10.0, ge=0, description="watch cache re-initialisation after a restart")
