"""Scenarios: data-driven runs of a workload in a booted guest, turned into named checks."""
