"""gameday package: agents."""
