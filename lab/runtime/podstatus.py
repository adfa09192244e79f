"""What a kubelet reports for a pod: its status, and the readiness URL it probes."""

from __future__ import annotations

from typing import Any

from lab.runtime.objects import now_time

Obj = dict[str, Any]


def readiness_url(container: Obj, pod_ip: str) -> str:
    """The URL of a container's httpGet readiness probe, as the kubelet would call it ("" when it has none);
    a named port is looked up among the container's ports."""
    get = (container.get("readinessProbe") or {}).get("httpGet")
    if not get:
        return ""
    port = get.get("port")
    if isinstance(port, str) and not port.isdigit():
        port = next((p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == port), None)
        if port is None:
            return ""
    scheme = str(get.get("scheme") or "HTTP").lower()
    return f"{scheme}://{get.get('host') or pod_ip}:{port}{get.get('path') or '/'}"


def pod_status(
    pod: Obj,
    pod_ip: str,
    host_ip: str,
    ready: bool,
    started_at: str,
    waiting: str,
    message: str,
    restarts: int,
) -> Obj:
    """The status a kubelet posts for a pod running (or waiting to run) its program."""
    old = pod.get("status") or {}
    now = now_time()
    prev = {c.get("type"): c for c in old.get("conditions") or []}

    def cond(ctype: str, ok: bool) -> Obj:
        status = "True" if ok else "False"
        before = prev.get(ctype) or {}
        since = before.get("lastTransitionTime") if before.get("status") == status else now
        return {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": since}

    containers = (pod.get("spec") or {}).get("containers") or [{"name": "main", "image": "lab/pause"}]
    running = not waiting
    statuses = []
    for c in containers:
        state: Obj = (
            {"running": {"startedAt": started_at or now}}
            if running
            else {"waiting": {"reason": waiting, "message": message[:300]}}
        )
        statuses.append({
            "name": c.get("name", "main"),
            "image": c.get("image", "lab/pause"),
            "imageID": f"lab://{c.get('image', 'lab/pause')}",
            "containerID": f"lab://{(pod.get('metadata') or {}).get('uid', '')}/{c.get('name', 'main')}",
            "ready": ready and running,
            "started": running,
            "restartCount": restarts,
            "state": state,
        })
    return {
        "phase": "Running" if running or restarts > 0 else "Pending",
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": old.get("startTime") or now,
        "qosClass": old.get("qosClass") or "BestEffort",
        "conditions": [
            cond("PodReadyToStartContainers", True),
            cond("Initialized", True),
            cond("Ready", ready and running),
            cond("ContainersReady", ready and running),
            cond("PodScheduled", True),
        ],
        "containerStatuses": statuses,
    }
