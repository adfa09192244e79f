"""The lab's virtual GPU nodes: node agents with fake NVML, a DCGM-style exporter and an XID health monitor."""
