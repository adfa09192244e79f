"""Fault backends of the node agent: kernel log, DCGM, NVML, firewall."""
