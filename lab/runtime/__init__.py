"""The lab runtime: virtual kubelets, controllers, a service proxy and metrics in one asyncio process.

Start it with ``python -m lab.runtime --api URL --users FILE --nodes N ...`` (``lab up`` does).
"""
