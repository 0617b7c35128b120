"""The generic run core: scenario specs, phases, the infrastructure rule, run dirs, results.

Scenario packages (``harness.scenarios.<type>``) plug into it; nothing here knows about any
one scenario's protocol.
"""
