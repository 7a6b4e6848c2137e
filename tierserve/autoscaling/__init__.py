"""Queue-depth autoscaling: the pure decision (decision.py) and its Ray Serve adapter."""
