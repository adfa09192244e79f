"""An emulated Kubernetes API server over real HTTP, for the lab and the tests.

The official ``kubernetes`` Python client and ``kubectl`` 1.32 talk to it unmodified. One asyncio
(uvloop) process serving aiohttp; objects are JSON dicts in memory, encoded with msgspec.

Emulated:
- Resources (data-driven table in ``resources.py``): core/v1 namespaces, nodes, pods (status,
  eviction), services, endpoints, configmaps, secrets, serviceaccounts, events; coordination/v1
  leases; apps/v1 deployments, daemonsets, replicasets (scale, status); policy/v1
  poddisruptionbudgets (stored only); networking/v1 networkpolicies; flowcontrol/v1 flowschemas and
  prioritylevelconfigurations; authentication/v1 tokenreviews (create only); events.k8s.io/v1 events
  (stored separately from core events).
- Verbs get, list, watch, create, update, patch (merge, strategic, JSON patch; apply-patch+yaml is
  treated as a merge patch), delete, deletecollection; label and field selectors; limit/continue;
  resourceVersion, generation, uid, creationTimestamp; 409 Conflict on stale resourceVersion; watch
  history ring with 410 Expired; BOOKMARKs; Status error bodies shaped like the real ones.
- Discovery (legacy format, which kubectl falls back to), /version, /healthz, /livez, /readyz, a
  Table answer for ``kubectl get`` (a few columns per kind).
- Bearer-token authentication from a users file; TokenReview from the same table.
- API Priority and Fairness with the default FlowSchemas and PriorityLevelConfigurations as real
  API objects (``apf.py``), scaled to ``--seats`` (default 60); 429 + Retry-After: 1.
- Prometheus metrics at /metrics with the real names (``metrics.py``).
- Deleting a namespace deletes its objects; deleting a Deployment/ReplicaSet/DaemonSet deletes
  the ReplicaSets and Pods that name it in ownerReferences (unless propagationPolicy=Orphan).

NOT modelled: etcd or any persistence (state dies with the process); RBAC or any authorization
(every authenticated user may do everything; only anonymous requests are refused, except the
public health/version paths); admission (webhooks, quotas, limit ranges, PodDisruptionBudgets are
not enforced by eviction); graceful deletion and finalizers (objects go at once); controllers
(nothing creates ReplicaSets or Pods: that is ``lab/runtime``); protobuf, CBOR, aggregated discovery,
OpenAPI (/openapi/* answer 404: kubectl then validates nothing client-side), server-side apply field
management (managedFields), dry-run, watch-list streaming beyond sendInitialEvents, field
validation, defaulting beyond a few fields (pod phase, replicas, service clusterIP); /metrics is
exempt from APF only through the exempt FlowSchema (it needs a token unless --anonymous-metrics).

Entry points: ``python -m lab.apiserver`` (see ``__main__``), ``lab.apiserver.app.build_app``,
and the test helper ``lab.apiserver.testing.running_apiserver``.
"""
