"""gameday's janitor as a pod program: the pod of ``gameday/gameday-janitor`` (agents/manifests/30-janitor.yaml,
image ``ghcr.io/gameday/gameday``) runs this repository's ``gameday`` command line on a real lab node, as its
container would.

The container's arguments (``janitor --in-cluster ...``) are run by ``python -m flows.cli`` with the in-cluster
configuration the official client reads (``KUBERNETES_SERVICE_HOST``/``PORT`` and the pod's bound service-account
token, the lab's CA and the namespace mounted at ``/var/run/secrets/kubernetes.io/serviceaccount`` in a private
mount namespace), in this machine's network, its metrics served on the pod's own address. Ready while the process
runs; stopped with SIGTERM (SIGKILL after ``STOP_GRACE_S``) when the pod goes, and sent SIGTERM by the kernel
if the runtime that started it dies first.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from lab.pods import PodContext
from lab.procs import dies_with_parent, stop_group
from lab.sandbox import host_network_command

ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 10.0
"""Longer than a sweep's rollback of one fault takes, shorter than the kubelet's stop timeout."""


class GamedayJanitor:
    """The ``gameday`` command line in a pod (the janitor Deployment's container)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, ctx: PodContext) -> None:
        """Write the service-account files and start ``gameday <args>`` with the in-cluster configuration."""
        pod_dir = Path(ctx.pod_dir)
        account = pod_dir / "serviceaccount"
        account.mkdir(parents=True, exist_ok=True)
        (account / "token").write_text(ctx.api_token)
        (account / "namespace").write_text(ctx.namespace)
        if ctx.api_ca_file:
            (account / "ca.crt").write_bytes(Path(ctx.api_ca_file).read_bytes())
        api = urlsplit(ctx.api_url)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "PYTHONPATH": str(ROOT),
               "PYTHONUNBUFFERED": "1", "HOME": str(pod_dir), **ctx.env,
               "KUBERNETES_SERVICE_HOST": api.hostname or "", "KUBERNETES_SERVICE_PORT": str(api.port or 443)}
        if "GAMEDAY_STATE_DIR" in env:  # the container's scratch directory, on this machine: the pod's own
            env["GAMEDAY_STATE_DIR"] = str(pod_dir / "state")
        args = list(ctx.args)
        if "--metrics-port" in args and "--metrics-address" not in args:
            args += ["--metrics-address", ctx.pod_ip]  # the pod's own address: replicas and labs never collide
        argv = [sys.executable, "-m", "flows.cli", *args]
        with (pod_dir / "gameday.log").open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *dies_with_parent(host_network_command(argv, account), "TERM"), env=env, cwd=str(ROOT),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True)

    def ready(self) -> bool:
        """Whether the process still runs."""
        return self._proc is not None and self._proc.returncode is None

    async def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after the grace period; idempotent."""
        proc, self._proc = self._proc, None
        await stop_group(proc, STOP_GRACE_S)
