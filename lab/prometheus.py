"""The lab's Prometheus: Debian's ``/usr/bin/prometheus`` scraping the control plane's components, the runtime,
the pods that ask to be, itself and the GPU side (``gpu-exporter``, ``gpu-monitor``, ``training``).

``scrape_job`` and ``write_jobs_config`` write the scrape config (1 s interval; the API server is scraped with a
token through ``authorization: credentials_file``); ``launch`` runs Prometheus with its TSDB in the state dir and
returns once ``/-/ready`` answers and every job has an ``up`` sample.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import yaml

from lab.errors import LabStartError
from lab.procs import log_tail, spawn, stop_pid

PROMETHEUS_BIN = "/usr/bin/prometheus"


def find_binary() -> str | None:
    """The prometheus binary, if installed (``apt-get install -y prometheus``)."""
    return PROMETHEUS_BIN if Path(PROMETHEUS_BIN).exists() else shutil.which("prometheus")


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on host right now, below the kernel's ephemeral range.

    A port the kernel picks for ``bind(0)`` comes from the ephemeral range, where every outgoing connection also
    takes its source port: between the pick and the component's own bind a client's connection could take it
    ("address already in use"). Below that range only listeners bind, so the pick stays free; a port is not
    handed out twice by one process.
    """
    low = min(_ephemeral_low(), 65536)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low // 2), low) if low > 2048 else rng.randrange(20000, 30000)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # every pick was taken: let the kernel choose
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _target(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.scheme or "http", parsed.netloc


def scrape_job(name: str, url: str, token_file: Path | None = None, ca_file: Path | None = None) -> dict[str, Any]:
    """A scrape config for one target's metrics URL, with a bearer token file and a CA to verify it by."""
    parsed = urlparse(url)
    job: dict[str, Any] = {"job_name": name, "scheme": parsed.scheme or "http",
                           "metrics_path": parsed.path or "/metrics", "static_configs": [{"targets": [parsed.netloc]}]}
    if token_file is not None:
        job["authorization"] = {"type": "Bearer", "credentials_file": str(token_file)}
    if ca_file is not None:
        job["tls_config"] = {"ca_file": str(ca_file)}
    return job


def write_jobs_config(state_dir: Path, port: int, jobs: list[dict[str, Any]]) -> Path:
    """Write prometheus.yml scraping every job and Prometheus itself (job ``prometheus``) each second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [*jobs, {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }
    path = state_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def up_jobs(http: httpx.Client, url: str) -> set[str]:
    """Jobs that have at least one ``up`` sample now."""
    resp = http.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=5)
    resp.raise_for_status()
    return {r["metric"].get("job", "") for r in resp.json()["data"]["result"]}


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float, jobs: tuple[str, ...],
) -> None:
    """Poll /-/ready, then the ``up`` series of every job; LabStartError on death or timeout."""
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    with httpx.Client() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabStartError(f"prometheus exited ({proc.returncode}):\n{log_tail(log_path)}")
            try:
                if http.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    seen = up_jobs(http, url)
                    if seen >= set(jobs):
                        return
            except (httpx.HTTPError, ValueError):  # not answering yet, or not with JSON
                pass
            time.sleep(0.2)
    raise LabStartError(f"prometheus had no samples for {sorted(set(jobs) - seen)} within {timeout:.0f} s")


def launch(state_dir: Path, config: Path, port: int, jobs: tuple[str, ...], timeout: float = 60.0,
           ) -> tuple[subprocess.Popen[bytes], str]:
    """Run Prometheus on a written config (TSDB in the state dir); returns (process, URL) once every job has an
    ``up`` sample."""
    binary = find_binary()
    if binary is None:
        raise LabStartError("prometheus is not installed: apt-get install -y prometheus")
    tsdb = state_dir / "prometheus-data"
    tsdb.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "prometheus.log"
    proc = spawn([
        binary, f"--config.file={config}", f"--storage.tsdb.path={tsdb}",
        f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
        "--storage.tsdb.retention.time=7d",
    ], log_path, cwd=state_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log_path, timeout, jobs)
    except BaseException:
        stop_pid(proc.pid)
        raise
    return proc, url
