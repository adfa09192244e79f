"""Parse the subset of CoreDNS's Corefile that the lab's DNS server honours.

Server blocks (zones and port) and the plugins ``kubernetes``, ``cache``, ``erratic``, ``forward``
are parsed into typed models; ``errors``, ``health``, ``ready``, ``reload``, ``loadbalance``,
``prometheus``, ``loop``, ``log`` are recorded by name. Any other plugin is kept in
``ServerBlock.unknown`` so the caller can warn about it: it never stops the parse.

Lab extension: ``erratic { servfail N }`` answers SERVFAIL to one query in N.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.dns.config import (
    CacheConfig,
    Corefile,
    ErraticConfig,
    ForwardConfig,
    KubernetesConfig,
    ServerBlock,
)
from lab.dns.errors import CorefileError

__all__ = [
    "KUBEADM_COREFILE",
    "CacheConfig",
    "Corefile",
    "ErraticConfig",
    "ForwardConfig",
    "KubernetesConfig",
    "ServerBlock",
    "normalise_zone",
    "parse_corefile",
    "parse_duration",
]

KNOWN_PLUGINS = frozenset(
    {"errors", "health", "ready", "reload", "loadbalance", "prometheus", "loop", "log", "debug"}
    | {"kubernetes", "cache", "erratic", "forward"}
)
DEFAULT_STALE_S = 3600.0
KUBEADM_COREFILE = """\
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class _Directive:
    name: str
    args: list[str]
    body: list[_Directive]
    line: int


def parse_duration(text: str) -> float:
    """Parse a Go duration (``5s``, ``100ms``, ``1m30s``) or bare seconds into seconds."""
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise CorefileError(f"invalid duration {text!r}")
    return total


def _tokens(text: str) -> list[tuple[str, int]]:
    """Split into (token, line) pairs; ``{``, ``}`` and newlines (``\\n``) are tokens too."""
    out: list[tuple[str, int]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0]
        for part in line.replace(";", "\n").split("\n"):
            for word in re.findall(r'"[^"]*"|[{}]|[^\s{}]+', part):
                out.append((word.strip('"') if word.startswith('"') else word, lineno))
            out.append(("\n", lineno))
    return out


def _parse_body(toks: list[tuple[str, int]], i: int) -> tuple[list[_Directive], int]:
    """Parse directives until the matching ``}``; returns them and the index after it."""
    out: list[_Directive] = []
    current: _Directive | None = None
    while i < len(toks):
        tok, line = toks[i]
        if tok == "}":
            return out, i + 1
        if tok == "\n":
            current = None
            i += 1
        elif tok == "{":
            if current is None:
                raise CorefileError(f"line {line}: '{{' without a directive")
            current.body, i = _parse_body(toks, i + 1)
            current = None
        elif current is None:
            current = _Directive(tok, [], [], line)
            out.append(current)
            i += 1
        else:
            current.args.append(tok)
            i += 1
    raise CorefileError("unexpected end of Corefile: missing '}'")


def _int(d: _Directive, idx: int, default: int) -> int:
    if len(d.args) <= idx:
        return default
    try:
        return int(d.args[idx])
    except ValueError:
        raise CorefileError(f"line {d.line}: {d.name}: {d.args[idx]!r} is not a number") from None


def _split_zone(addr: str) -> tuple[str, int]:
    addr = addr.removeprefix("dns://")
    zone, _, port = addr.rpartition(":") if ":" in addr else (addr, "", "")
    try:
        return normalise_zone(zone), int(port) if port else 53
    except ValueError:
        raise CorefileError(f"invalid server address {addr!r}") from None


def normalise_zone(zone: str) -> str:
    """Lower-case a zone and drop its trailing dot (the root zone is ``"."``)."""
    zone = zone.strip().lower().rstrip(".")
    return zone or "."


def _kubernetes(d: _Directive, block_zones: tuple[str, ...]) -> KubernetesConfig:
    zones = tuple(normalise_zone(z) for z in d.args) or block_zones
    ttl, pods, fall = 5, "disabled", None
    for sub in d.body:
        if sub.name == "ttl":
            ttl = _int(sub, 0, 5)
        elif sub.name == "pods":
            pods = sub.args[0] if sub.args else "disabled"
            if pods not in ("disabled", "insecure", "verified"):
                raise CorefileError(f"line {sub.line}: pods {pods!r} is not disabled|insecure|verified")
        elif sub.name == "fallthrough":
            fall = tuple(normalise_zone(z) for z in sub.args) or (".",)
    return KubernetesConfig(zones=zones, ttl=ttl, pods=pods, fallthrough=fall)  # type: ignore[arg-type]


def _cache(d: _Directive) -> CacheConfig:
    values: dict[str, object] = {}
    if d.args:
        values["success_ttl"] = values["denial_ttl"] = _int(d, 0, 3600)
    for sub in d.body:
        if sub.name in ("success", "denial"):
            values[f"{sub.name}_capacity"] = _int(sub, 0, 9984)
            if len(sub.args) > 1:
                values[f"{sub.name}_ttl"] = _int(sub, 1, 0)
            if len(sub.args) > 2:
                values[f"{sub.name}_min_ttl"] = _int(sub, 2, 0)
        elif sub.name == "serve_stale":
            values["serve_stale_s"] = parse_duration(sub.args[0]) if sub.args else DEFAULT_STALE_S
            if len(sub.args) > 1:
                if sub.args[1] not in ("immediate", "verify"):
                    raise CorefileError(f"line {sub.line}: serve_stale mode must be immediate|verify")
                values["stale_refresh"] = sub.args[1]
        elif sub.name == "disable" and sub.args and sub.args[0] in ("success", "denial"):
            zones = tuple(normalise_zone(z) for z in sub.args[1:]) or (".",)
            values[f"disable_{sub.args[0]}"] = zones
    return CacheConfig.model_validate(values)


def _erratic(d: _Directive) -> ErraticConfig:
    if not d.body:
        return ErraticConfig(drop=2)
    values: dict[str, object] = {}
    for sub in d.body:
        if sub.name in ("drop", "truncate", "servfail"):
            values[sub.name] = _int(sub, 0, 2)
        elif sub.name == "delay":
            values["delay"] = _int(sub, 0, 2)
            if len(sub.args) > 1:
                values["delay_s"] = parse_duration(sub.args[1])
        else:
            raise CorefileError(f"line {sub.line}: unknown erratic property {sub.name!r}")
    return ErraticConfig.model_validate(values)


def _forward(d: _Directive) -> ForwardConfig:
    values: dict[str, object] = {"zone": normalise_zone(d.args[0]), "to": tuple(d.args[1:])}
    for sub in d.body:
        if sub.name == "force_tcp":
            values["force_tcp"] = True
        elif sub.name == "max_fails":
            values["max_fails"] = _int(sub, 0, 2)
    return ForwardConfig.model_validate(values)


def _block(keys: list[str], body: list[_Directive]) -> ServerBlock:
    pairs = [_split_zone(k) for k in keys]
    zones = tuple(z for z, _ in pairs)
    values: dict[str, object] = {"zones": zones, "port": pairs[0][1]}
    names: list[str] = []
    unknown: list[str] = []
    for d in body:
        names.append(d.name)
        if d.name not in KNOWN_PLUGINS:
            unknown.append(d.name)
        elif d.name == "kubernetes":
            values["kubernetes"] = _kubernetes(d, zones)
        elif d.name == "cache":
            values["cache"] = _cache(d)
        elif d.name == "erratic":
            values["erratic"] = _erratic(d)
        elif d.name == "forward":
            if len(d.args) < 2:
                raise CorefileError(f"line {d.line}: forward needs FROM and TO")
            values["forward"] = _forward(d)
    values["plugins"], values["unknown"] = tuple(names), tuple(unknown)
    return ServerBlock.model_validate(values)


def parse_corefile(text: str) -> Corefile:
    """Parse Corefile text; raises ``CorefileError`` naming the line for malformed input."""
    toks = _tokens(text)
    blocks: list[ServerBlock] = []
    i = 0
    keys: list[str] = []
    while i < len(toks):
        tok, line = toks[i]
        if tok == "\n":
            i += 1
        elif tok == "{":
            if not keys:
                raise CorefileError(f"line {line}: server block without a zone")
            body, i = _parse_body(toks, i + 1)
            blocks.append(_block(keys, body))
            keys = []
        elif tok == "}":
            raise CorefileError(f"line {line}: unexpected '}}'")
        else:
            keys.append(tok)
            i += 1
    if keys:
        raise CorefileError(f"server block {' '.join(keys)!r} has no body")
    if not blocks:
        raise CorefileError("the Corefile has no server block")
    return Corefile(blocks=tuple(blocks))
