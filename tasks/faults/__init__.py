"""gameday package: tasks/faults."""
