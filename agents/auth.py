"""Authentication and authorisation of every ``/v1`` call: Kubernetes TokenReview + an allow-list.

The caller's bearer token is sent to the cluster's TokenReview API (authentication.k8s.io/v1) with
the agent's own credentials. Unknown token → 401; known identity not on the allow-list (usernames or
groups) → 403; the API unreachable or refusing the agent → 503 (fail closed). Positive answers are
cached for ``cache_seconds`` (keyed by the token's SHA-256, never the token itself).
"""

from __future__ import annotations

import hashlib
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from agents.errors import AuthUnavailable, Forbidden, Unauthenticated

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


@dataclass(frozen=True)
class ApiCredentials:
    """How the agent itself talks to the API server."""

    url: str
    token: str | None = None
    token_file: Path | None = None
    ca_file: Path | None = None
    insecure: bool = False

    def bearer(self) -> str | None:
        """The agent's token (re-read from the file each time: service-account tokens rotate)."""
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext | bool:
        """TLS settings for calls to the API server."""
        if self.insecure:
            return False
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        return True


@dataclass(frozen=True)
class Identity:
    """Who a token belongs to."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass
class Authenticator:
    """TokenReview with a short positive cache, then the allow-list."""

    api: ApiCredentials
    allow_users: frozenset[str]
    allow_groups: frozenset[str] = frozenset()
    cache_seconds: float = 10.0
    timeout_seconds: float = 5.0
    _cache: dict[str, tuple[float, Identity]] = field(default_factory=dict)
    _session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def authorize(self, header: str | None) -> Identity:
        """Check an Authorization header; returns the identity or raises 401/403/503 errors."""
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            raise Unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
        token = header[7:].strip()
        who = await self.review(token)
        if who.username in self.allow_users or self.allow_groups.intersection(who.groups):
            return who
        raise Forbidden(f"identity {who.username!r} is not allowed to use this agent "
                        f"(allowed users: {sorted(self.allow_users)}, groups: {sorted(self.allow_groups)})")

    async def review(self, token: str) -> Identity:
        """Ask the API server who ``token`` is (cached when positive)."""
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        body: dict[str, object] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        status = await self._post(body)
        if not status.get("authenticated"):
            self._cache.pop(key, None)
            raise Unauthenticated(f"token rejected by the cluster's TokenReview: {status.get('error') or 'unknown token'}")
        user = status.get("user")
        user = user if isinstance(user, dict) else {}
        groups = user.get("groups")
        who = Identity(str(user.get("username", "")), tuple(str(g) for g in groups) if isinstance(groups, list) else ())
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, who)
        return who

    async def _post(self, body: dict[str, object]) -> dict[str, object]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_seconds))
        headers = {"Content-Type": "application/json"}
        try:
            bearer = self.api.bearer()
        except OSError as exc:
            raise AuthUnavailable(f"cannot read the agent's own token: {exc}") from exc
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        url = self.api.url.rstrip("/") + TOKENREVIEW_PATH
        try:
            async with self._session.post(url, json=body, headers=headers, ssl=self.api.ssl_context()) as resp:
                if resp.status not in (200, 201):
                    text = (await resp.text())[:300]
                    raise AuthUnavailable(f"TokenReview at {url} answered {resp.status}: {text}")
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AuthUnavailable(f"cannot reach the TokenReview API at {url}: {exc!r}") from exc
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, dict):
            raise AuthUnavailable(f"TokenReview at {url} answered without a status")
        return status
