"""Process environment for the CLI: a project-local Prefect home and no analytics unless configured.

Environment is read only in ``flows/`` and ``tasks/settings.py``; this module is where the CLI sets the
Prefect defaults before Prefect is imported.
"""

from __future__ import annotations

import os
from pathlib import Path


def prefect_defaults(state_dir: Path | None = None) -> None:
    """Use ``<state>/prefect`` as PREFECT_HOME (unless one is configured), turn analytics off, and have the
    ephemeral server record task runs in batches."""
    base = state_dir or Path(os.environ.get("GAMEDAY_STATE_DIR", ".gameday"))
    if "PREFECT_HOME" not in os.environ and "PREFECT_API_URL" not in os.environ:
        home = (base / "prefect").resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault(
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"
    )  # busy machines start slowly
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # The ephemeral server records task runs in batches (Prefect's default writes each event on its own: about
    # 20 ms of server CPU per task run, on the cores the run needs; bench/bench_overhead.py --prefect).
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "500")
    os.environ.setdefault("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL", "1")


def quiet_console() -> None:
    """Keep Prefect's console logging to CRITICAL (the CLI shows its own progress and clean errors; the API
    still receives every log line)."""
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def prefect_server_configured() -> bool:
    """Whether runs go to a Prefect server (PREFECT_API_URL set) rather than an ephemeral one."""
    return bool(os.environ.get("PREFECT_API_URL"))


def user_name() -> str:
    """Who is running the CLI (for the record)."""
    return os.environ.get("USER") or os.environ.get("LOGNAME") or ""
