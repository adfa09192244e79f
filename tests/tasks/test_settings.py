"""Settings: the one place that reads GAMEDAY_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.settings import Settings


def test_defaults_derive_paths_from_the_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without environment, the lab, ledger and history live under .gameday."""
    for var in ("GAMEDAY_STATE_DIR", "GAMEDAY_LAB_STATE_DIR", "GAMEDAY_HISTORY_DB"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.lab_dir == Path(".gameday/lab") and s.ledger_dir == Path(".gameday/ledger")
    assert s.history_path == Path(".gameday/history.sqlite") and s.ledger_namespace == "gameday"


def test_environment_is_read_with_the_prefix_and_secrets_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """GAMEDAY_* variables set fields; the agent token is a SecretStr that does not print."""
    monkeypatch.setenv("GAMEDAY_STATE_DIR", "/tmp/gd-x")
    monkeypatch.setenv("GAMEDAY_AGENT_TOKEN", "s3cret")
    monkeypatch.setenv("GAMEDAY_AGENT_PORT", "9999")
    s = Settings()
    assert s.lab_dir == Path("/tmp/gd-x/lab") and s.agent_port == 9999
    assert s.agent_token is not None and s.agent_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)


def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    """An out-of-range port is a validation error, not a silent default."""
    monkeypatch.setenv("GAMEDAY_AGENT_PORT", "70000")
    with pytest.raises(ValidationError):
        Settings()
