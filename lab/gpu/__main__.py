"""``python -m lab.gpu``: the lab's GPU side in one process (see ``lab.gpu.stack``)."""

from __future__ import annotations

from lab.gpu.stack import main

if __name__ == "__main__":
    raise SystemExit(main())
