"""gameday package: lab."""
