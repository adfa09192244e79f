"""Labels and annotations more than one of the lab's parts read (as Kubernetes keeps its well-known labels apart)."""

from __future__ import annotations

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
"""kwok's own: a Node annotated ``kwok.x-k8s.io/node: fake`` is played by kwok (``lab.control.kwok``), not by one
of the runtime's kubelets; the runtime's traffic pods run only on such nodes."""
