"""The lab's CoreDNS-like DNS server: Corefile subset, informer store, cache, erratic, metrics.

``lab.dns.program.CoreDnsProgram`` is the pod program behind the ``lab/coredns`` image.
"""
