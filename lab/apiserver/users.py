"""The lab's identities (bearer tokens) and kubeconfig files that use them.

A users file is JSON ``{"<token>": {"username": ..., "uid": ..., "groups": [...]}}``; the server
authenticates bearer tokens against it. ``make_users`` builds the standard lab identities.

Service-account tokens for ANY (namespace, name) need no users-file entry: ``sa_token(secret, ns, name)``
is ``lab-sa.<ns>.<name>.<HMAC-SHA256(secret, "ns/name")>``, and a server given the same secret
(``--sa-secret-file``) verifies it (``UserTable``) as ``system:serviceaccount:<ns>:<name>`` with the
groups ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and ``system:authenticated``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

ADMIN = "admin"
RUNNER = "gameday-runner"
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "lab-sa."


class UserInfo(BaseModel):
    """Who a token belongs to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str
    uid: str = ""
    groups: list[str] = []


def _token(label: str) -> str:
    return f"{label.replace(':', '-')}-{secrets.token_hex(12)}"


def make_users(
    nodes: list[str],
    service_accounts: list[tuple[str, str]] | None = None,
    extra: dict[str, list[str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Generate the standard lab identities: admin, gameday-runner, one per node, service accounts.

    ``service_accounts`` are (namespace, name) pairs; ``extra`` maps more usernames to groups.
    Returns the users-file mapping token -> {username, uid, groups}.
    """
    users: dict[str, dict[str, Any]] = {}

    def add(username: str, groups: list[str]) -> None:
        users[_token(username.rsplit(":", 1)[-1])] = {
            "username": username,
            "uid": f"uid-{secrets.token_hex(6)}",
            "groups": [*groups, AUTHENTICATED],
        }

    add(ADMIN, ["system:masters"])
    add(RUNNER, ["gameday:runners"])
    for node in nodes:
        add(f"system:node:{node}", ["system:nodes"])
    for namespace, name in service_accounts or []:
        add(
            f"system:serviceaccount:{namespace}:{name}",
            ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
        )
    for username, groups in (extra or {}).items():
        add(username, groups)
    return users


def sa_user(namespace: str, name: str) -> UserInfo:
    """The identity of a service account, as the real token authenticator reports it."""
    uid = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:12]
    return UserInfo(
        username=f"system:serviceaccount:{namespace}:{name}",
        uid=f"uid-sa-{uid}",
        groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED],
    )


def _mac(secret: bytes, namespace: str, name: str) -> str:
    return hmac.new(secret, f"{namespace}/{name}".encode(), hashlib.sha256).hexdigest()[:40]


def sa_token(secret: bytes, namespace: str, name: str) -> str:
    """The bearer token of service account namespace/name, signed with the lab's secret."""
    return f"{SA_PREFIX}{namespace}.{name}.{_mac(secret, namespace, name)}"


def verify_sa_token(secret: bytes, token: str) -> UserInfo | None:
    """The service account a signed token belongs to, or None when it is not one or the MAC is wrong."""
    if not token.startswith(SA_PREFIX):
        return None
    body, _, mac = token[len(SA_PREFIX) :].rpartition(".")
    namespace, _, name = body.partition(".")
    if not namespace or not name:
        return None
    if not hmac.compare_digest(mac, _mac(secret, namespace, name)):
        return None
    return sa_user(namespace, name)


def new_sa_secret(path: Path) -> bytes:
    """Write a fresh random service-account signing secret (hex, mode 0600) and return it."""
    secret = secrets.token_hex(32)
    path.write_text(secret)
    path.chmod(0o600)
    return secret.encode()


def read_sa_secret(path: Path | str) -> bytes:
    """The signing secret written by ``new_sa_secret``."""
    return Path(path).read_text().strip().encode()


class UserTable(Mapping[str, UserInfo]):
    """Token -> identity: the static users plus, with a secret, every signed service-account token."""

    def __init__(self, static: Mapping[str, UserInfo], secret: bytes | None = None) -> None:
        self.static = dict(static)
        self.secret = secret

    def __getitem__(self, token: str) -> UserInfo:
        user = self.static.get(token)
        if user is None and self.secret:
            user = verify_sa_token(self.secret, token)
        if user is None:
            raise KeyError(token)
        return user

    def __iter__(self) -> Iterator[str]:
        return iter(self.static)

    def __len__(self) -> int:
        return len(self.static)


def token_for(users: dict[str, dict[str, Any]], username: str) -> str:
    """The token of a username in a users mapping (KeyError if absent)."""
    for token, info in users.items():
        if info["username"] == username:
            return token
    raise KeyError(username)


def load_users(path: Path) -> dict[str, UserInfo]:
    """Read and validate a users file."""
    raw = json.loads(path.read_text())
    return {token: UserInfo.model_validate(info) for token, info in raw.items()}


def write_users(path: Path, users: dict[str, dict[str, Any]]) -> None:
    """Write a users file (mode 0600)."""
    path.write_text(json.dumps(users, indent=1))
    path.chmod(0o600)


def write_kubeconfig(
    path: Path | str,
    server_url: str,
    token: str | dict[str, str],
    context_name: str = "lab",
    ca_file: Path | str | None = None,
) -> Path:
    """Write a kubeconfig for the lab; ``token`` may map usernames to tokens (one context each).

    With a mapping, contexts are named ``<context_name>-<user>`` and the first is current. For an
    https URL, ``ca_file`` is embedded as certificate-authority-data (kubectl sends tokens only over TLS).
    """
    tokens = {"lab-user": token} if isinstance(token, str) else token
    contexts = []
    users = []
    for user, tok in tokens.items():
        ctx = context_name if isinstance(token, str) else f"{context_name}-{user.replace(':', '-')}"
        contexts.append(
            {"name": ctx, "context": {"cluster": context_name, "user": user, "namespace": "default"}}
        )
        users.append({"name": user, "user": {"token": tok}})
    cluster: dict[str, Any] = {"server": server_url}
    if ca_file is not None:
        cluster["certificate-authority-data"] = base64.b64encode(Path(ca_file).read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context_name, "cluster": cluster}],
        "contexts": contexts,
        "users": users,
        "current-context": contexts[0]["name"],
        "preferences": {},
    }
    out = Path(path)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    out.chmod(0o600)
    return out
