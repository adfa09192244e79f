"""Process start-up: importing what `gameday run` and the lab's parts import, with and without bytecode.

    .venv/bin/python bench/bench_startup.py [--repeat 3]

Every `gameday` command, Prefect's ephemeral server and each part of the lab is a new Python process. With
bytecode (pyproject.toml [tool.uv] compile-bytecode, and `compileall` over gameday's own packages in .ci/run)
each one reads ``__pycache__``; without it (PYTHONDONTWRITEBYTECODE set, as in many container images, and
nothing compiled at install) each one compiles every module from source again. "Without" is measured by
pointing PYTHONPYCACHEPREFIX at an empty folder with writing turned off, so the sources are compiled on every
import and nothing is left behind. Runs the two side by side, prints the medians and their ratio; asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = {
    "gameday CLI (flows.cli + flows.campaign)": "import flows.cli, flows.campaign",
    "Prefect server app": "import prefect.server.api.server",
    "lab runtime (the real nodes' kubelets)": "import lab.runtime.app",
}


def seconds(statement: str, compiled: bool, empty_prefix: str) -> float:
    """Wall seconds for a fresh interpreter to run ``statement``."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    if not compiled:
        env["PYTHONPYCACHEPREFIX"] = empty_prefix
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    """Print the median start-up of each import set with and without bytecode, and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gameday-bench-nopyc-") as empty:
        print(f"{'imports':44} {'bytecode':>9} {'source':>9} {'ratio':>6}")
        for label, statement in IMPORTS.items():
            seconds(statement, True, empty)  # warm the page cache once
            with_pyc, without = [], []
            for _ in range(args.repeat):  # interleaved, so both see the same machine load
                with_pyc.append(seconds(statement, True, empty))
                without.append(seconds(statement, False, empty))
            a, b = statistics.median(with_pyc), statistics.median(without)
            print(f"{label:44} {a:8.2f}s {b:8.2f}s {b / a:5.1f}x")


if __name__ == "__main__":
    main()
