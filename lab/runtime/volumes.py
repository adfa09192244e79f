"""A pod's configMap volumes on this machine: each projected into a directory of its own and kept in step.

The kubelet writes every key of the ConfigMap (or the volume's ``items``) as a file, atomically, and rewrites a
file only when its content changed, so a program that watches its configuration (CoreDNS's ``reload``) sees an
edit of the ConfigMap as it would in a cluster (there, within the kubelet's sync period; here, within
``SYNC_S``). A program gets the directories as ``PodContext.volumes`` (mount path -> directory): the lab's
processes share this machine's filesystem, so nothing is mounted at the container's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.errors import ApiStatusError
from lab.runtime.client import ApiClient, api_path
from lab.runtime.files import write_atomic

Obj = dict[str, Any]
SYNC_S = 2.0
"""How often a running pod's configMap volumes are compared with their ConfigMaps."""


def _write(path: Path, text: str) -> bool:
    """Write a volume's file only when its content changed (a watcher sees one change per edit); True if it did."""
    if path.exists() and path.read_text() == text:
        return False
    write_atomic(path, text)
    return True


class ConfigMapVolumes:
    """The configMap volumes of one pod, projected under ``root``."""

    def __init__(self, pod: Obj, root: Path) -> None:
        spec = pod.get("spec") or {}
        self.namespace = str((pod.get("metadata") or {}).get("namespace", ""))
        self.root = root
        self.sources = {str(v["name"]): v["configMap"] for v in spec.get("volumes") or [] if v.get("configMap")}
        containers = spec.get("containers") or [{}]
        self.mounts = {str(m["mountPath"]): str(m["name"]) for m in containers[0].get("volumeMounts") or []
                       if m.get("name") in self.sources}

    def paths(self) -> dict[str, str]:
        """Each mount path -> the directory holding that volume's files."""
        return {mount: str(self.root / name) for mount, name in self.mounts.items()}

    async def sync(self, api: ApiClient, token: str) -> list[Path]:
        """Write every volume's files from its ConfigMap (read as the pod's node) and return those rewritten; a
        missing optional one is left empty, a missing required one raises ApiStatusError (the pod cannot start, as
        in a cluster)."""
        written: list[Path] = []
        for name, source in self.sources.items():
            path = api_path("", "v1", "configmaps", self.namespace, str(source.get("name", "")))
            try:
                data: dict[str, str] = (await api.get(path, token=token)).get("data") or {}
            except ApiStatusError as err:
                if err.code == 404 and source.get("optional"):
                    data = {}
                else:
                    raise
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                file = self.root / name / str(item["path"])
                if item["key"] in data and _write(file, data[item["key"]]):
                    written.append(file)
        return written
