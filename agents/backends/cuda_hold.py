"""Hold device memory on a real GPU through the CUDA driver API (ctypes ``libcuda``), for gpu-degrade.

Only used on real GPU nodes; the allocation lives until :meth:`CudaMemoryHold.release` or until the
agent process dies (the driver frees a dead process's memory, so a killed agent leaves nothing behind).
"""

from __future__ import annotations

import ctypes

from agents.errors import BackendFailed, BackendUnavailable


def _load() -> ctypes.CDLL:
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise BackendUnavailable("no NVIDIA GPU/driver on this node (libcuda.so.1 not found): cannot hold memory")


class CudaMemoryHold:
    """One cuMemAlloc of ``size`` bytes on device ``index`` in a context of its own."""

    def __init__(self, index: int, size: int) -> None:
        self._cuda = _load()
        self._ctx = ctypes.c_void_p()
        self._ptr = ctypes.c_uint64()
        dev = ctypes.c_int()
        self._check(self._cuda.cuInit(0), "cuInit")
        self._check(self._cuda.cuDeviceGet(ctypes.byref(dev), index), "cuDeviceGet")
        self._check(self._cuda.cuCtxCreate_v2(ctypes.byref(self._ctx), 0, dev), "cuCtxCreate")
        self._check(self._cuda.cuMemAlloc_v2(ctypes.byref(self._ptr), ctypes.c_size_t(size)), "cuMemAlloc")

    @staticmethod
    def _check(rc: int, what: str) -> None:
        if rc != 0:
            raise BackendFailed(f"CUDA {what} failed with error {rc}")

    def release(self) -> None:
        """Free the allocation and destroy the context (idempotent)."""
        if self._ptr.value:
            self._cuda.cuMemFree_v2(self._ptr)
            self._ptr = ctypes.c_uint64()
        if self._ctx.value:
            self._cuda.cuCtxDestroy_v2(self._ctx)
            self._ctx = ctypes.c_void_p()
