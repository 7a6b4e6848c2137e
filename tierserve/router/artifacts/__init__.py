"""Trained artifacts of the router: the embedding head and the fitted thresholds."""
