"""The ``http`` probe: one request; tolerance on the status code (value/range) or the body (regex/jsonpath)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tasks.errors import ProbeError
from tasks.probes.tolerance import within

if TYPE_CHECKING:
    from blueprints.probes import HttpProbe
    from tasks.probes import ProbeContext, ProbeResult


def evaluate(spec: HttpProbe, ctx: ProbeContext) -> ProbeResult:
    """Send the request and check its tolerance; a refused or timed-out request is a failed probe."""
    from tasks.probes import ProbeResult

    try:
        resp = httpx.request(spec.method, spec.url, timeout=spec.timeout.total_seconds(),
                             follow_redirects=True)
    except httpx.TimeoutException:
        return ProbeResult(ok=False, value=None, message=f"{spec.method} {spec.url}: timed out")
    except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as e:  # refused, reset, TLS
        return ProbeResult(ok=False, value=None, message=f"{spec.method} {spec.url}: cannot connect ({e})")
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        raise ProbeError(f"{spec.method} {spec.url}: {e}") from e
    tol = spec.tolerance
    value: Any = resp.status_code if (tol.value is not None and not isinstance(tol.value, str)) or tol.range \
        else resp.text
    ok = within(tol, value)
    return ProbeResult(ok=ok, value=value if isinstance(value, int) else resp.status_code,
                       message=f"{spec.method} {spec.url}: HTTP {resp.status_code}")
