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
