"""gameday's settings: the one place that reads the environment (prefix ``GAMEDAY_``).

Everything below ``flows/`` receives a :class:`Settings` (or values taken from one) instead of reading
``os.environ``. Paths are relative to the working directory unless absolute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runner settings, read from ``GAMEDAY_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="GAMEDAY_", extra="forbid", frozen=True)

    state_dir: Path = Field(default=Path(".gameday"), description="runs, ledgers, storm stats")
    lab_state_dir: Path | None = Field(default=None, description="the lab's state; default <state_dir>/lab")
    kubeconfig: Path | None = Field(default=None, description="default: the target's, else ~/.kube/config")
    kube_context: str | None = None
    prometheus_url: str | None = Field(default=None, description="overrides the target's Prometheus")
    ledger_namespace: str = "gameday"
    agent_token: SecretStr | None = None
    agent_audience: str | None = Field(default="gameday-agent", description=(
        "speak to agents with a token the cluster issued for this audience (TokenRequest for "
        "agent_service_account), which the stock DaemonSet's agents (--audience=gameday-agent) alone accept; "
        "empty: send the runner's own cluster token, for agents started without --audience"))
    agent_service_account: str = Field(default="gameday/gameday-runner", pattern=r"^[a-z0-9.-]+/[a-z0-9.-]+$",
                                       description="NAMESPACE/NAME of the account agent tokens are requested for")
    agent_scheme: Literal["https", "http"] = Field(default="https", description=(
        "how agents found by their pod's IP are spoken to (the stock DaemonSet serves TLS); an agent's "
        "gameday.dev/agent-endpoint annotation names its own"))
    agent_ca_file: Path | None = Field(default=None, description=(
        "the CA that signed the agents' serving certificates (default: the system's CAs); always verified"))
    agent_port: int = Field(default=9470, ge=1, le=65535)
    storm_token: SecretStr | None = Field(
        default=None, description="bearer token the client storm uses on real clusters (default: the runner's)"
    )
    history_db: Path | None = Field(default=None, description="default: <state_dir>/history.sqlite")
    request_timeout_s: float = Field(default=10.0, gt=0)
    api_outage_retry_s: float = Field(default=90.0, ge=0)
    lease_ttl_s: float = Field(default=90.0, ge=10, le=3600, description=(
        "how long a run's campaign Lease lives without renewal: after a killed runner, the janitor reverts its "
        "faults this long after the last renewal"))

    @classmethod
    def defaults(cls) -> Settings:
        """The defaults alone, without reading the environment (for contexts built without settings)."""
        return cls.model_construct()

    @property
    def lab_dir(self) -> Path:
        """The lab's state directory."""
        return self.lab_state_dir or self.state_dir / "lab"

    @property
    def ledger_dir(self) -> Path:
        """Where local ledgers live (one JSON file per run)."""
        return self.state_dir / "ledger"

    @property
    def history_path(self) -> Path:
        """The campaign history database."""
        return self.history_db or self.state_dir / "history.sqlite"
