"""``python -m agents``: run the gameday node agent (see ``agents/config.py`` for the flags)."""

from agents.main import main

raise SystemExit(main())
