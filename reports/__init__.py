"""gameday package: reports."""
