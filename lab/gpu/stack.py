"""The lab's whole GPU side in one process: node agents, the DCGM-style exporter, the health monitor and,
optionally (root), the CPU training job whose rank namespaces the GPU nodes' agents partition.

``python -m lab.gpu --state-dir D --api URL --token-file F [--monitor-token-file F2] --node gpu-node-0
--node gpu-node-1 [--training] [--runtime-url URL] [--ready-file F] [--ca-file CA]`` starts everything, writes
a JSON ready file (``exporter``, ``monitor``, ``agents`` {node: endpoint}, ``agent_pids`` {node: pid},
``training`` {metrics, ranks}) and runs until
SIGTERM/SIGINT, then stops everything in reverse order (agents revert what they hold; namespaces are
deleted). With ``--training``, rank ``r`` is hosted by the ``r``-th node: its agent's nccl-partition rules
go into namespace ``gdtrain-<id>-<r>``. Prometheus should scrape ``exporter``, ``monitor`` and
``training.metrics``.

Identities: ``--token-file`` is the agents' own (TokenReview of callers, node annotations; in the lab
``system:serviceaccount:gameday:gameday-agent``); the agents accept callers authenticated as
``gameday-runner`` or allowed by RBAC (``--authorize any``: a SubjectAccessReview on
``agentfaults.gameday.dev/<node>``). ``--monitor-token-file`` is the monitor's (cordon, evict, restart; in the lab
``system:serviceaccount:kube-system:gpu-health-monitor``), default the same as ``--token-file``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from lab.gpu.exporter import NodeSource, serve
from lab.gpu.monitor import GpuHealthMonitor, MonitorConfig
from lab.gpu.nodes import start_gpu_agents, stop_gpu_agents


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lab.gpu", description="the lab's GPU nodes, exporter and monitor"
    )
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--api", required=True, help="API server URL")
    p.add_argument(
        "--token-file", type=Path, required=True, help="the agents' token (TokenReview, node annotations)"
    )
    p.add_argument("--monitor-token-file", type=Path, help="the monitor's token (default: --token-file)")
    p.add_argument("--node", action="append", default=[], help="a GPU node (repeat)")
    p.add_argument("--exporter-port", type=int, default=0)
    p.add_argument("--monitor-port", type=int, default=0)
    p.add_argument("--training", action="store_true", help="also run the training job (root: namespaces)")
    p.add_argument("--training-ranks", type=int, default=2)
    p.add_argument("--training-metrics-port", type=int, default=0)
    p.add_argument("--ready-file", type=Path)
    p.add_argument(
        "--runtime-url", help="lab runtime control API, so XID 79 reboots kill and revive the node"
    )
    p.add_argument("--reboot-seconds", type=float, default=60.0, help="seconds a reboot takes")
    p.add_argument("--ca-file", type=Path, help="the CA of an HTTPS API server (the real control plane's)")
    a = p.parse_args(argv)
    if not a.node:
        p.error("give at least one --node")
    return a


def _start_training(a: argparse.Namespace, stack: ExitStack) -> tuple[dict[str, str], dict[str, Any]]:
    from lab.training.job import JobConfig, TrainingJob
    from lab.training.netns import training_network

    net = stack.enter_context(training_network(secrets.token_hex(3), a.training_ranks))
    job = TrainingJob(a.state_dir / "training", net, JobConfig(metrics_port=a.training_metrics_port))
    stack.enter_context(job)
    netns = {node: r.namespace for node, r in zip(a.node, net.ranks, strict=False)}
    ranks = {r.namespace: r.address for r in net.ranks}
    return netns, {"metrics": job.metrics_url, "ranks": ranks, "hosts": netns}


async def _run(a: argparse.Namespace) -> None:
    token = a.token_file.read_text().strip()
    monitor_token = (a.monitor_token_file or a.token_file).read_text().strip()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ExitStack() as stack:
        netns, training = _start_training(a, stack) if a.training else ({}, {})
        handles = start_gpu_agents(a.state_dir, a.api, token, a.node, netns, a.ca_file)
        stack.callback(stop_gpu_agents, handles)
        sources = [NodeSource(h.node, h.nvml_state_path, h.kmsg_path) for h in handles]
        server, exporter_port = serve(sources, port=a.exporter_port)
        stack.callback(server.server_close)
        stack.callback(server.shutdown)
        kmsg = {h.node: h.kmsg_path for h in handles}
        monitor = GpuHealthMonitor(
            MonitorConfig(a.api, monitor_token, kmsg, listen_port=a.monitor_port,
                          runtime_url=a.runtime_url, reboot_s=a.reboot_seconds, ca_file=a.ca_file)
        )
        ready = asyncio.Event()
        task = asyncio.create_task(monitor.run(stop, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if ready.is_set():
            info = {
                "exporter": f"http://127.0.0.1:{exporter_port}/metrics",
                "monitor": f"http://127.0.0.1:{monitor.port}/metrics",
                "agents": {h.node: h.endpoint for h in handles},
                "agent_pids": {h.node: h.proc.pid for h in handles},
                "training": training,
            }
            print(f"lab.gpu: {json.dumps(info)}", file=sys.stderr, flush=True)
            if a.ready_file is not None:
                tmp = a.ready_file.with_name(a.ready_file.name + ".tmp")
                tmp.write_text(json.dumps(info))
                tmp.replace(a.ready_file)
        await task


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: run until SIGTERM/SIGINT."""
    asyncio.run(_run(_parse(argv)))
    return 0
