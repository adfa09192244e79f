"""The lab's CPU training job: torchrun + gloo across network namespaces, a stand-in for an NCCL job."""
