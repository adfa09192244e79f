"""A runner that plans, records, injects several faults and then waits to be SIGKILLed (for reconcile tests).

Usage: python tests/tasks/victim.py KUBECONFIG STATE_DIR LAB_DIR (the test API server's state dir, read as the lab's
endpoints); prints INJECTED when every fault is in.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from blueprints.faults import ControlPlaneOverload, CorednsOutage, NodeCordon
from tasks.cluster import Cluster, read_lab_endpoints
from tasks.faults import behaviour
from tasks.faults.base import FaultContext, Timeouts
from tasks.ledger import Ledger
from tasks.settings import Settings
from tests.tasks.helpers import NODES

RUN_ID = "victim"


def main() -> None:
    """Inject the faults, say so, then hang (bounded) until killed."""
    kubeconfig, state_dir, lab_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    cluster = Cluster.from_kubeconfig(kubeconfig, "lab", lab=read_lab_endpoints(lab_dir))
    ctx = FaultContext(cluster=cluster, run_id=RUN_ID, log=lambda m: None,
                       settings=Settings(state_dir=state_dir), timeouts=Timeouts(storm_max_s=120))
    ledger = Ledger(state_dir, RUN_ID, cluster)
    specs = [
        ("scale", CorednsOutage(mode="scale-to-zero")),
        ("corefile", CorednsOutage(mode="corefile", corefile={"zones": ["example.org"], "action": "drop"})),
        ("cordon", NodeCordon(selector={"names": [NODES[0]], "mode": "all"})),
        ("storm", ControlPlaneOverload(mode="client-storm", resource="nodes", rate=20, concurrency=2)),
    ]
    for fault_id, spec in specs:
        b = behaviour(spec.kind)
        inj = b.plan(spec, ctx, run_id=RUN_ID, stage="s1", fault_id=fault_id)
        ledger.record(inj)
        inj = b.inject(inj, ctx)
        ledger.update(inj, "applied")
    print("INJECTED", flush=True)
    time.sleep(120)


if __name__ == "__main__":
    main()
