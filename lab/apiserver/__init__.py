"""An emulated Kubernetes API server over real HTTP, for the lab and the tests.

The official ``kubernetes`` Python client and ``kubectl`` 1.32 talk to it unmodified. One asyncio
(uvloop) process serving aiohttp; objects are JSON dicts in memory, encoded with msgspec.

Emulated:
- Resources (data-driven table in ``resources.py``): core/v1 namespaces, nodes, pods (status,
  eviction, binding), services, endpoints, configmaps, secrets, serviceaccounts, events; coordination/v1
  leases; apps/v1 deployments, daemonsets, replicasets (scale, status); policy/v1
  poddisruptionbudgets (stored only); networking/v1 networkpolicies; flowcontrol/v1 flowschemas and
  prioritylevelconfigurations; rbac.authorization.k8s.io/v1 roles, rolebindings, clusterroles,
  clusterrolebindings; authentication/v1 tokenreviews and selfsubjectreviews, authorization/v1
  subjectaccessreviews and selfsubjectaccessreviews (create only, never stored; answered by RBAC over
  the stored roles and bindings, ``rbac.py``; kubectl's protobuf reviews decoded by ``protowire.py``);
  events.k8s.io/v1 events (stored separately from core events).
- Verbs get, list, watch, create, update, patch (merge, strategic, JSON patch; apply-patch+yaml is
  treated as a merge patch), delete, deletecollection; label and field selectors; limit/continue;
  resourceVersion, generation, uid, creationTimestamp; 409 Conflict on stale resourceVersion; watch
  history ring with 410 Expired; BOOKMARKs; server-side dry run (dryRun=All); Status error bodies
  shaped like the real ones.
- Two listeners: plain HTTP (``url``, for lab components) and HTTPS with a self-signed certificate
  (``https_url``, for kubectl, whose clientcmd sends bearer tokens only over TLS).
- Discovery (legacy format, which kubectl falls back to), /version, /healthz, /livez, /readyz, a
  Table answer for ``kubectl get`` (a few columns per kind).
- Bearer-token authentication from a users file; TokenReview from the same table.
- Large LISTs are streamed in chunks while holding their APF seats, so concurrent LISTs really
  compete for the one process (the work is real serialization, not sleeps).
- API Priority and Fairness with the default FlowSchemas and PriorityLevelConfigurations as real
  API objects (``apf.py``), scaled to ``--seats`` (default 60); 429 + Retry-After: 1. Changes
  through the API apply to the next request; FlowSchemas naming a missing level are skipped.
  Not modelled: borrowing between levels (lendablePercent), virtual-time fair queuing (round robin
  over queues instead), restoring deleted mandatory objects (exempt, catch-all), FlowSchema and
  PriorityLevelConfiguration status conditions.
- Prometheus metrics at /metrics with the real names (``metrics.py``).
- Deleting a namespace deletes its objects; deleting a Deployment/ReplicaSet/DaemonSet deletes
  the ReplicaSets and Pods that name it in ownerReferences (unless propagationPolicy=Orphan).

NOT modelled: etcd or any persistence (state dies with the process); enforcing RBAC or any
authorization on requests (every authenticated user may do everything; only anonymous requests are
refused, except the public health/version paths: RBAC objects only decide access-review answers);
impersonation, LocalSubjectAccessReview, SelfSubjectRulesReview; admission (webhooks, quotas, limit ranges, PodDisruptionBudgets are
not enforced by eviction); graceful deletion and finalizers (objects go at once); controllers
(nothing creates ReplicaSets or Pods: that is ``lab/runtime``); protobuf request bodies other than access reviews (answered 415:
kubectl's generator commands such as ``kubectl create namespace|deployment|configmap`` send
protobuf and fail - use ``kubectl create -f``/``apply -f``), CBOR, aggregated discovery,
OpenAPI schemas (/openapi/v3 is a stub that makes kubectl validate server-side, which is ignored;
/openapi/v2 is 404; ``kubectl explain`` fails), server-side apply field
management (managedFields), watch-list streaming beyond sendInitialEvents, field
validation (fieldValidation is ignored), defaulting beyond a few fields (pod phase, replicas, service
clusterIP); pod logs/exec/port-forward; Table output for ``kubectl get -w`` (it falls back to names).
/metrics goes through APF like any request (admin is exempt) and needs a token unless
``--anonymous-metrics``; /healthz, /livez, /readyz and /version are public.

Entry points: ``python -m lab.apiserver`` (see ``__main__``), ``lab.apiserver.app.build_app``,
and the test helper ``lab.apiserver.testing.running_apiserver``.
"""
