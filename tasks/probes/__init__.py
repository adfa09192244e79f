"""gameday package: tasks/probes."""
