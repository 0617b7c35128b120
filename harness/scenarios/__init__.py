"""Scenario packages, one per scenario ``type``.

Each exposes ``SCENARIO`` (see harness.core.plugin).
"""
