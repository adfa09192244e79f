"""The lab's static identities: bearer tokens for kube-apiserver's ``--token-auth-file`` and the users file.

A users file is JSON ``{"<token>": {"username": ..., "uid": ..., "groups": [...]}}`` (``users.json`` in a lab's
state dir, mode 0600); ``lab.control.components.tokens_csv`` turns it into the API server's token file.
Service accounts have no static token: their tokens come from the API server's TokenRequest, as in a cluster.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

ADMIN = "admin"
RUNNER = "gameday-runner"
AUTHENTICATED = "system:authenticated"


def _token(label: str) -> str:
    return f"{label.replace(':', '-')}-{secrets.token_hex(12)}"


def make_users(nodes: list[str], extra: dict[str, list[str]] | None = None) -> dict[str, dict[str, Any]]:
    """The standard lab identities (admin in system:masters, gameday-runner in gameday:runners, ``system:node:<n>``
    for each node) plus ``extra`` usernames with their groups, as a users-file mapping token -> identity."""
    users: dict[str, dict[str, Any]] = {}

    def add(username: str, groups: list[str]) -> None:
        users[_token(username.rsplit(":", 1)[-1])] = {
            "username": username, "uid": f"uid-{secrets.token_hex(6)}", "groups": [*groups, AUTHENTICATED]}

    add(ADMIN, ["system:masters"])
    add(RUNNER, ["gameday:runners"])
    for node in nodes:
        add(f"system:node:{node}", ["system:nodes"])
    for username, groups in (extra or {}).items():
        add(username, groups)
    return users


def token_for(users: dict[str, dict[str, Any]], username: str) -> str:
    """The token of a username in a users mapping (KeyError if absent)."""
    for token, info in users.items():
        if info["username"] == username:
            return token
    raise KeyError(username)


def write_users(path: Path, users: dict[str, dict[str, Any]]) -> None:
    """Write a users file (mode 0600)."""
    path.write_text(json.dumps(users, indent=1))
    path.chmod(0o600)
