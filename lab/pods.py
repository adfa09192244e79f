"""The contract between the lab's virtual kubelets and the programs they run as pods.

A lab pod's first container image names a program (``lab/coredns``, ``lab/model-server``,
``lab/gateway``, ``lab/list-storm``, ``lab/pause``...). The kubelet looks the image up in
``lab.runtime.images.REGISTRY`` and runs the program in-process as asyncio tasks: starting the
pod starts it, deleting the pod (or its node dying) stops it. Each pod gets its own loopback
address (``status.podIP``, in 127.0.0.0/8) so several replicas can listen on the same port.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lab.sandbox import PodSandbox


@dataclass(frozen=True)
class PodContext:
    """What a pod program gets from its kubelet."""

    namespace: str
    name: str
    node_name: str
    pod_ip: str
    labels: dict[str, str]
    env: dict[str, str]
    args: list[str]
    api_url: str
    api_token: str
    extra: dict[str, Any] = field(default_factory=dict)
    api_ca_file: str = ""
    """The CA of the API server's certificate where api_url is HTTPS (a real pod's ``ca.crt``)."""
    sandbox: PodSandbox | None = None
    """The pod's own network namespace, for a program that asks for one (``sandboxed = True``)."""
    volumes: dict[str, str] = field(default_factory=dict)
    """Each volume mount's path in the container -> the directory on this machine that holds its files."""
    binaries: dict[str, str] = field(default_factory=dict)
    """The lab's built components (name -> path), for programs that run a real binary."""
    pod_dir: str = ""
    """A directory of this pod's own on this machine (its logs), removed when the pod stops."""
    readiness_url: str = ""
    """The container's httpGet readiness probe as a URL ("" when it declares none)."""


class PodProgram(Protocol):
    """A program a virtual kubelet can run as a pod (a class attribute ``sandboxed = True`` asks for a network
    namespace of its own, on the real plane: see lab/sandbox.py)."""

    async def start(self, ctx: PodContext) -> None:
        """Start serving; return once started (not when finished)."""

    def ready(self) -> bool:
        """Whether the pod's readiness probe would pass now."""

    async def stop(self) -> None:
        """Stop everything started; idempotent."""
