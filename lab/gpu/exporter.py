"""A DCGM-exporter-style metrics endpoint for the lab's fake GPUs, one process for all GPU nodes.

``python -m lab.gpu.exporter --node NODE=NVML_JSON:KMSG [...] --listen 127.0.0.1:PORT`` serves, per GPU,
with labels ``gpu``, ``UUID``, ``Hostname``, ``pci_bus_id`` and ``modelName`` as dcgm-exporter does:

- ``DCGM_FI_DEV_XID_ERRORS``: the last XID, from the agent's fake NVML state (``last_xid``, what a DCGM
  field-230 inject sets) or else from the node's kernel log (last XID line for that GPU's PCI address
  within ``xid_hold_s``; like DCGM's injected values it goes back to 0 afterwards).
- ``DCGM_FI_DEV_SM_CLOCK`` (MHz) and ``DCGM_FI_DEV_FB_USED`` (MiB): the fake NVML values.
- ``DCGM_FI_DEV_GPU_UTIL`` (%) and ``DCGM_FI_DEV_POWER_USAGE`` (W): a fake load model, since the fake NVML
  has no load: a busy GPU at 95 % scaled by its SM clock (0 after a fatal XID 79 or 48), drawing
  100 W + 5.5 W per % utilisation, capped at its power limit.
Every scrape re-reads the files.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from lab.gpu.xid import KmsgTail

BOOST_MHZ = 1980
FATAL = (79, 48)
LABELS = ["gpu", "UUID", "Hostname", "pci_bus_id", "modelName"]


@dataclass
class NodeSource:
    """Where one node's GPU state comes from."""

    node: str
    nvml_state: Path
    kmsg: Path


def gpu_uuid(node: str, index: int) -> str:
    """A stable fake GPU UUID for a node's GPU."""
    return f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{node}.gpu{index}.gameday.lab')}"


def fake_util(sm_clock_mhz: int, last_xid: int) -> float:
    """The fake load model's utilisation (%)."""
    return 0.0 if last_xid in FATAL else round(95.0 * min(1.0, sm_clock_mhz / BOOST_MHZ), 1)


class DcgmCollector(Collector):
    """Collects DCGM_FI_DEV_* gauges from fake NVML state files and kernel logs."""

    def __init__(self, sources: list[NodeSource], xid_hold_s: float = 60.0) -> None:
        self.sources = sources
        self.xid_hold_s = xid_hold_s
        self._tails = {s.node: KmsgTail(s.node, s.kmsg, from_start=True) for s in sources}
        self._kmsg_xid: dict[tuple[str, str], tuple[int, float]] = {}

    def _devices(self, source: NodeSource) -> list[dict[str, Any]]:
        try:
            devices: list[dict[str, Any]] = json.loads(source.nvml_state.read_text())["devices"]
            return devices
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return []

    def _read_kmsg(self, node: str) -> None:
        for event in self._tails[node].poll():
            self._kmsg_xid[(node, event.pci or "")] = (event.code, event.logged_at)

    def _last_xid(self, node: str, device: dict[str, Any]) -> int:
        if int(device.get("last_xid") or 0):
            return int(device["last_xid"])
        code, at = self._kmsg_xid.get((node, str(device.get("kernel_pci", ""))), (0, 0.0))
        return code if time.time() - at <= self.xid_hold_s else 0

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One scrape."""
        fams = {
            "xid": GaugeMetricFamily("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", labels=LABELS),
            "util": GaugeMetricFamily("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", labels=LABELS),
            "clock": GaugeMetricFamily("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", labels=LABELS),
            "power": GaugeMetricFamily("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", labels=LABELS),
            "fb": GaugeMetricFamily("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", labels=LABELS),
        }  # fmt: skip
        for source in self.sources:
            self._read_kmsg(source.node)
            for d in self._devices(source):
                index = int(d["index"])
                labels = [
                    str(index),
                    gpu_uuid(source.node, index),
                    source.node,
                    str(d["pci_bus_id"]),
                    str(d["name"]),
                ]
                xid = self._last_xid(source.node, d)
                clock = int(d["sm_clock_mhz"])
                util = fake_util(clock, xid)
                fams["xid"].add_metric(labels, xid)
                fams["util"].add_metric(labels, util)
                fams["clock"].add_metric(labels, clock)
                fams["power"].add_metric(labels, min(float(d["power_limit_w"]), 100.0 + 5.5 * util))
                fams["fb"].add_metric(labels, int(d["memory_used_mib"]))
        yield from fams.values()


def serve(sources: list[NodeSource], host: str = "127.0.0.1", port: int = 0) -> tuple[Any, int]:
    """Serve the collector on ``host:port`` in a thread; returns (server, port). Stop with server.shutdown()."""
    registry = CollectorRegistry()
    registry.register(DcgmCollector(sources))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_address[1])


def main(argv: list[str] | None = None) -> int:
    """CLI: serve until interrupted."""
    p = argparse.ArgumentParser(prog="python -m lab.gpu.exporter", description=__doc__)
    p.add_argument(
        "--node", action="append", default=[], metavar="NODE=NVML_JSON:KMSG", help="repeat per node"
    )
    p.add_argument("--listen", default="127.0.0.1:9400")
    a = p.parse_args(argv)
    sources = []
    for item in a.node:
        node, _, paths = item.partition("=")
        nvml, _, kmsg = paths.partition(":")
        if not (node and nvml and kmsg):
            p.error(f"--node wants NODE=NVML_JSON:KMSG, got {item!r}")
        sources.append(NodeSource(node, Path(nvml), Path(kmsg)))
    host, _, port = a.listen.rpartition(":")
    server, bound = serve(sources, host or "127.0.0.1", int(port))
    print(f"dcgm-exporter (lab): http://{host or '127.0.0.1'}:{bound}/metrics", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
