"""Authentication and authorisation of every ``/v1`` call: Kubernetes TokenReview, then an allow-list
and/or a Kubernetes SubjectAccessReview.

The caller's bearer token is sent to the cluster's TokenReview API (authentication.k8s.io/v1) with
the agent's own credentials; unknown token → 401. The identity it returns is then authorised by mode:

- ``allowlist``: its username or a group is on the allow-list, else 403;
- ``sar``: a SubjectAccessReview (``agents/access.py``: verb on ``agentfaults.gameday.dev/<node>``)
  says allowed, else 403 naming the identity and the missing permission;
- ``any``: the allow-list OR the SubjectAccessReview (asked only for identities not on the list).

With ``audiences`` (``--audience gameday-agent``) the TokenReview names them and the token must have been issued
for one of them (TokenRequest's ``audience``): the API server checks the token's ``aud`` claim, and the agent checks
that the review's ``status.audiences`` holds one of its own, as the TokenReview API asks of an audience-aware
client. A runner's own cluster token (audience: the API server) is then refused with 401, so a token an agent sees
cannot be replayed against the API server, nor an API token against the agent.

The API unreachable, refusing the agent or answering nonsense → 503 (fail closed: never allowed).
Positive answers are cached for ``cache_seconds`` (TokenReviews keyed by the token's SHA-256, never the
token itself; SubjectAccessReviews by identity and verb), so a revoked grant stops working within it.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from agents.access import SAR_PATH, Identity, Mode, missing, sar_body
from agents.errors import AuthUnavailable, Forbidden, Unauthenticated

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
CACHE_MAX = 1024


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


def _identity(user: object) -> Identity:
    info = user if isinstance(user, dict) else {}
    groups = info.get("groups")
    extra = info.get("extra")
    return Identity(
        str(info.get("username", "")),
        tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        str(info.get("uid") or ""),
        {str(k): tuple(str(x) for x in v) for k, v in extra.items() if isinstance(v, list)}
        if isinstance(extra, dict) else {},
    )


@dataclass
class Authenticator:
    """TokenReview with a short positive cache, then the allow-list and/or a SubjectAccessReview."""

    api: ApiCredentials
    allow_users: frozenset[str]
    allow_groups: frozenset[str] = frozenset()
    cache_seconds: float = 10.0
    timeout_seconds: float = 5.0
    mode: Mode = "allowlist"
    node: str = ""
    audiences: tuple[str, ...] = ()
    _cache: dict[str, tuple[float, Identity]] = field(default_factory=dict)
    _sar_cache: dict[str, float] = field(default_factory=dict)
    _session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def listed(self, who: Identity) -> bool:
        """Whether the identity is on the allow-list."""
        return who.username in self.allow_users or bool(self.allow_groups.intersection(who.groups))

    async def authorize(self, header: str | None, verb: str = "get") -> Identity:
        """Check an Authorization header for ``verb``; returns the identity or raises 401/403/503 errors."""
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            raise Unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
        who = await self.review(header[7:].strip())
        if self.mode != "sar" and self.listed(who):
            return who
        if self.mode == "allowlist":
            raise Forbidden(f"identity {who.username!r} is not allowed to use this agent "
                            f"(allowed users: {sorted(self.allow_users)}, groups: {sorted(self.allow_groups)})")
        allowed, reason = await self.access_review(who, verb)
        if allowed:
            return who
        message = missing(who, verb, self.node, reason)
        if self.mode == "any":
            message += " (it is not on this agent's allow-list either)"
        raise Forbidden(message)

    async def review(self, token: str) -> Identity:
        """Ask the API server who ``token`` is (cached when positive)."""
        key = hashlib.sha256(token.encode()).hexdigest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        spec: dict[str, object] = {"token": token}
        if self.audiences:
            spec["audiences"] = list(self.audiences)
        body: dict[str, object] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        status = await self._post(TOKENREVIEW_PATH, body, "TokenReview")
        if not status.get("authenticated"):
            self._cache.pop(key, None)
            why = status.get("error") or "unknown token"
            if self.audiences:
                why = f"{why} (this agent accepts only tokens issued for the audience {' or '.join(self.audiences)})"
            raise Unauthenticated(f"token rejected by the cluster's TokenReview: {why}")
        granted = status.get("audiences")
        if self.audiences and not (isinstance(granted, list) and set(self.audiences).intersection(map(str, granted))):
            # an API server that ignores spec.audiences would say yes to any of its tokens: fail closed
            raise Unauthenticated(f"the cluster's TokenReview did not confirm the audience {' or '.join(self.audiences)} "
                                  f"(status.audiences: {granted!r})")
        who = _identity(status.get("user"))
        if len(self._cache) > CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (now + self.cache_seconds, who)
        return who

    async def access_review(self, who: Identity, verb: str) -> tuple[bool, str]:
        """Ask the API server whether ``who`` may ``verb`` this node's agentfaults (cached when allowed)."""
        body = sar_body(who, verb, self.node)
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        now = time.monotonic()
        if self._sar_cache.get(key, 0.0) > now:
            return True, ""
        status = await self._post(SAR_PATH, body, "SubjectAccessReview")
        allowed = status.get("allowed") is True and status.get("denied") is not True
        if not allowed:
            self._sar_cache.pop(key, None)
            reason = "; ".join(str(status[k]) for k in ("reason", "evaluationError") if status.get(k))
            return False, reason
        if len(self._sar_cache) > CACHE_MAX:
            self._sar_cache.clear()
        self._sar_cache[key] = now + self.cache_seconds
        return True, ""

    async def _post(self, path: str, body: dict[str, object], what: str) -> dict[str, object]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_seconds))
        headers = {"Content-Type": "application/json"}
        try:
            bearer = self.api.bearer()
        except OSError as exc:
            raise AuthUnavailable(f"cannot read the agent's own token: {exc}") from exc
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        url = self.api.url.rstrip("/") + path
        try:
            async with self._session.post(url, json=body, headers=headers, ssl=self.api.ssl_context()) as resp:
                if resp.status not in (200, 201):
                    text = (await resp.text())[:300]
                    raise AuthUnavailable(f"{what} at {url} answered {resp.status} (failing closed): {text}")
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise AuthUnavailable(f"cannot reach the {what} API at {url} (failing closed): {exc!r}") from exc
        status = data.get("status") if isinstance(data, dict) else None
        if not isinstance(status, dict):
            raise AuthUnavailable(f"{what} at {url} answered without a status (failing closed)")
        return status
