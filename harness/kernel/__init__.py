"""Kernel tree operations: sources, patch series, configuration, builds, artifact cache."""
