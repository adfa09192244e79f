"""The real CoreDNS as a pod program: the lab's built ``coredns`` binary, in the pod's own sandbox.

A pod whose image is ``registry.k8s.io/coredns/coredns`` runs, on a real lab node, the CoreDNS v1.15.0 that
``lab build`` made (lab/components/cmd/coredns), as a container would: in the pod's own network namespace
(``lab/sandbox.py``: it binds ``:53``, ``:8080``, ``:8181`` and ``:9153`` on its pod IP as the stock Corefile asks,
without a ``bind`` directive), with the in-cluster configuration its ``kubernetes`` plugin reads
(``KUBERNETES_SERVICE_HOST``/``PORT`` and the pod's bound service-account token, the lab's CA and the namespace at
``/var/run/secrets/kubernetes.io/serviceaccount``), and its configMap volume (the Corefile) as a directory the
kubelet keeps in step with the ConfigMap, so the ``reload`` plugin picks up an edit. Container paths in its
arguments are translated to those directories (the lab's processes share this machine's filesystem). Readiness is
the container's httpGet readiness probe (default the ``ready`` plugin's ``:8181/ready``), probed every second. A
``hostNetwork`` pod (NodeLocal DNSCache) runs in this machine's network instead, binding the addresses its
Corefile names. The process is stopped with SIGTERM (SIGKILL after
``STOP_GRACE_S``) when the pod goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from lab.errors import LabError
from lab.pods import PodContext
from lab.procs import dies_with_parent, stop_group
from lab.sandbox import host_network_command

READY_PORT = 8181
PROBE_S = 1.0
STOP_GRACE_S = 8.0
"""Longer than the health plugin's lameduck (5 s in the lab's Corefile), shorter than the kubelet's stop timeout."""


def translate(args: list[str], volumes: dict[str, str]) -> list[str]:
    """Arguments with every container path under a volume's mount path replaced by the volume's directory."""
    out = []
    for arg in args:
        for mount, directory in sorted(volumes.items(), key=lambda kv: -len(kv[0].rstrip("/"))):
            base = mount.rstrip("/")
            if arg == base or arg.startswith(base + "/"):
                arg = directory + arg[len(base):]
                break
        out.append(arg)
    return out


class CoreDnsBinary:
    """The real CoreDNS binary, run in the pod's sandbox."""

    sandboxed = True

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._probe: asyncio.Task[None] | None = None
        self._ready = False

    async def start(self, ctx: PodContext) -> None:
        """Write the service-account files, start CoreDNS inside the sandbox and begin probing its readiness."""
        binary = ctx.binaries.get("coredns")
        if not binary:
            raise LabError("the real CoreDNS needs the lab's coredns binary (lab build)")
        pod_dir = Path(ctx.pod_dir)
        account = pod_dir / "serviceaccount"
        account.mkdir(parents=True, exist_ok=True)
        (account / "token").write_text(ctx.api_token)
        (account / "namespace").write_text(ctx.namespace)
        (account / "ca.crt").write_bytes(Path(ctx.api_ca_file).read_bytes())
        api = urlsplit(ctx.api_url)
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **ctx.env,
               "KUBERNETES_SERVICE_HOST": api.hostname or "", "KUBERNETES_SERVICE_PORT": str(api.port or 443)}
        argv = [binary, *translate(ctx.args, ctx.volumes)]
        # in the pod's sandbox, or in this machine's network for a hostNetwork pod (NodeLocal DNSCache)
        command = ctx.sandbox.command(argv, account) if ctx.sandbox else host_network_command(argv, account)
        # killed with the runtime: a CoreDNS left behind keeps a node address's :53 (SO_REUSEPORT) and answers
        # half the next lab's queries from its old Corefile (stop 27's CI: two serve_stale runs refuted)
        with (pod_dir / "coredns.log").open("ab") as log:
            self._proc = await asyncio.create_subprocess_exec(
                *dies_with_parent(command), env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        url = ctx.readiness_url or f"http://{ctx.pod_ip}:{READY_PORT}/ready"
        self._probe = asyncio.create_task(self._probe_loop(url))

    async def _probe_loop(self, url: str) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=PROBE_S)) as resp:
                        self._ready = resp.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    self._ready = False
                if self._proc is not None and self._proc.returncode is not None:
                    self._ready = False
                await asyncio.sleep(PROBE_S)

    def ready(self) -> bool:
        """Whether CoreDNS's ready plugin answered 200 at the last probe (and the process still runs)."""
        return self._ready and self._proc is not None and self._proc.returncode is None

    async def stop(self) -> None:
        """Stop probing; SIGTERM the process group, SIGKILL it after the grace period; idempotent."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        proc, self._proc = self._proc, None
        self._ready = False
        await stop_group(proc, STOP_GRACE_S)
