"""Benchmarks run by `tierserve bench ...`; results land in benchmarks/results/."""
