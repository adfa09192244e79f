"""A container's environment as the kubelet makes it: Service links, literal values, downward-API fieldRefs and
``$(VAR)`` references, in that order of precedence (later wins)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from lab.runtime.objects import Obj

_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(value: str, known: Mapping[str, str]) -> str:
    """``$(NAME)`` replaced by a variable already defined, ``$$`` by ``$``; a reference to an undefined variable is
    left as written (the kubelet's expansion rules)."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return known.get(match.group(1), match.group(0))

    return _REFERENCE.sub(one, value)


def _field_ref(path: str, pod: Obj, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.hostIP": host_ip,
    }
    return str(values.get(path, ""))


def _env_name(service: str) -> str:
    return service.upper().replace("-", "_")


def service_links(services: Iterable[Obj], namespace: str, enabled: bool = True) -> dict[str, str]:
    """The ``<NAME>_SERVICE_HOST``/``_PORT`` variables of the Services a pod in ``namespace`` sees: those of its own
    namespace (when ``enableServiceLinks``) and ``default/kubernetes``; headless and ClusterIP-less ones are skipped."""
    env: dict[str, str] = {}
    chosen = [s for s in services
              if ((s.get("metadata") or {}).get("namespace") == namespace and enabled)
              or ((s.get("metadata") or {}).get("namespace"), (s.get("metadata") or {}).get("name"))
              == ("default", "kubernetes")]
    for svc in chosen:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = _env_name(str(svc["metadata"]["name"]))
        env[f"{name}_SERVICE_HOST"] = str(ip)
        env[f"{name}_SERVICE_PORT"] = str(ports[0].get("port"))
        for port in ports:
            proto = str(port.get("protocol") or "TCP")
            if port.get("name"):
                env[f"{name}_SERVICE_PORT_{_env_name(str(port['name']))}"] = str(port.get("port"))
            prefix = f"{name}_PORT_{port.get('port')}_{proto}"
            env[prefix] = f"{proto.lower()}://{ip}:{port.get('port')}"
            env[f"{prefix}_PROTO"] = proto.lower()
            env[f"{prefix}_PORT"] = str(port.get("port"))
            env[f"{prefix}_ADDR"] = str(ip)
        first = ports[0]
        env[f"{name}_PORT"] = f"{str(first.get('protocol') or 'TCP').lower()}://{ip}:{first.get('port')}"
    return env


def container_env(container: Obj, pod: Obj, pod_ip: str, host_ip: str = "",
                  services: Iterable[Obj] = ()) -> dict[str, str]:
    """A container's environment: the Service links, then each ``env`` entry in order (a literal value with its
    ``$(VAR)`` references expanded, or a downward-API fieldRef)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    env = service_links(services, str(meta.get("namespace") or ""), bool(spec.get("enableServiceLinks", True)))
    for var in container.get("env") or []:
        name = var.get("name")
        if not name:
            continue
        if "value" in var:
            env[name] = expand(str(var.get("value") or ""), env)
        ref = (var.get("valueFrom") or {}).get("fieldRef")
        if ref:
            env[name] = _field_ref(str(ref.get("fieldPath", "")), pod, pod_ip, host_ip)
    return env
