"""gameday package: tasks."""
