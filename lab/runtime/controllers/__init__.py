"""The runtime's controllers: scheduler, Deployment, DaemonSet, endpoints and node lifecycle."""
