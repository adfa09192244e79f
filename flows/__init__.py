"""gameday package: flows."""
