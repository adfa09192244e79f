"""Helpers for the report tests: independent sample selection straight from frames files, and chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from blueprints.record import CampaignRecord


def raw_samples(run_dir: Path, observable: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Samples of one observable in [start, end), read straight from the frames file (independent of reports/)."""
    rec = CampaignRecord.model_validate_json((run_dir / "record.json").read_text())
    path = run_dir / (rec.frames_file or "frames.parquet")
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, keep_default_na=False)
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df = df[(df["observable"] == observable) & (df["timestamp"] >= start) & (df["timestamp"] < end)]
    return df[np.isfinite(df["value"].to_numpy(dtype=float))]


def chromium_or_skip() -> str:
    """Path to Debian's chromium; fails in CI, skips locally with how to install it."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing (apt-get install -y chromium)")
        pytest.skip("needs Debian chromium: apt-get install -y chromium")
    return exe
