"""Which program a lab image runs: ``REGISTRY`` maps an image name to its PodProgram class.

Classes are imported on first use, so an image whose program is missing fails its pod
(``ErrImagePull``, as a missing image would) instead of the whole runtime. ``lab/pause`` and
unknown images run the no-op pause program. ``lab/program`` runs the class named by the pod's
``lab.gameday/program: module:Class`` annotation (for tests and experiments).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from lab.pods import PodContext, PodProgram

PROGRAM_ANNOTATION = "lab.gameday/program"


class PauseProgram:
    """The pause container: does nothing and is always ready."""

    async def start(self, ctx: PodContext) -> None:
        """Nothing to start."""

    def ready(self) -> bool:
        """Always ready."""
        return True

    async def stop(self) -> None:
        """Nothing to stop."""


class ImagePullError(LookupError):
    """An image's program cannot be loaded."""


REGISTRY: dict[str, str] = {
    "lab/pause": "lab.runtime.images:PauseProgram",
    "lab/model-server": "lab.workload.model_server:ModelServerProgram",
    "lab/gateway": "lab.workload.gateway:GatewayProgram",
    "lab/loadgen": "lab.workload.loadgen:LoadGenProgram",
    "lab/list-storm": "lab.workload.storm:ListStormProgram",
    "registry.k8s.io/coredns/coredns": "lab.control.coredns:CoreDnsBinary",
    "ghcr.io/gameday/gameday": "lab.control.janitor:GamedayJanitor",
}


def image_name(image: str) -> str:
    """An image reference without its tag or digest."""
    name = image.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def load_class(target: str) -> Callable[[], PodProgram]:
    """Import "module:Class" (ImagePullError when it cannot be imported)."""
    module_name, _, attr = target.partition(":")
    try:
        cls: Callable[[], PodProgram] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise ImagePullError(f"cannot load {target}: {err}") from err
    return cls


def program_class(image: str, annotations: dict[str, str] | None = None) -> Callable[[], PodProgram]:
    """The program class a container image runs (ImagePullError when it cannot be loaded)."""
    name = image_name(image)
    if name == "lab/program":
        target = (annotations or {}).get(PROGRAM_ANNOTATION)
        if not target:
            raise ImagePullError(f"lab/program needs the {PROGRAM_ANNOTATION} annotation")
        return load_class(target)
    target = REGISTRY.get(name)
    if target is None:
        return PauseProgram
    return load_class(target)


def sandboxed(image: str, annotations: dict[str, str] | None = None) -> bool:
    """Whether an image's program asks for a network namespace of its own (False when it cannot be loaded)."""
    try:
        return bool(getattr(program_class(image, annotations), "sandboxed", False))
    except ImagePullError:
        return False


def program_for(image: str, annotations: dict[str, str] | None = None) -> PodProgram:
    """A fresh program instance for a container image."""
    return program_class(image, annotations)()
