"""``python -m lab``: the lab lifecycle CLI (see lab/cli.py)."""

from lab.cli import app

if __name__ == "__main__":
    app(prog_name="python -m lab")
