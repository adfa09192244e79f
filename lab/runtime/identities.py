"""The identities a lab needs: the standard ones plus the service accounts its pods run as."""

from __future__ import annotations

from typing import Any

from lab.apiserver.users import make_users

LAB_NAMESPACES = ("kube-system", "kube-node-lease", "default", "inference", "gameday", "telemetry")
EXTRA_SERVICE_ACCOUNTS = (
    ("kube-system", "coredns"),
    ("kube-system", "gpu-health-monitor"),
    ("telemetry", "telemetry"),
    ("gameday", "gameday-agent"),
    ("inference", "model-server"),
)
CONTROL_PLANE_USERS: dict[str, list[str]] = {
    "system:kube-controller-manager": [],
    "system:kube-scheduler": [],
}


def service_accounts() -> list[tuple[str, str]]:
    """(namespace, name) of every service account that gets a token: <ns>:default and the extras."""
    return [(ns, "default") for ns in LAB_NAMESPACES] + list(EXTRA_SERVICE_ACCOUNTS)


def lab_users(nodes: list[str]) -> dict[str, dict[str, Any]]:
    """The users-file mapping for a lab with these nodes."""
    return make_users(nodes, service_accounts(), {k: list(v) for k, v in CONTROL_PLANE_USERS.items()})
