"""The lab's real Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok."""
