"""Console classifier: find kernel problem reports in serial console / dmesg text.

The kernel says what went wrong in its own words (``Kernel panic - not
syncing``, ``BUG:``, ``WARNING: CPU: ...``, ``invoked oom-killer`` ...).
This package turns that text into typed :class:`Finding` objects so that the
VM runtime can stop early on a fatal one and a scenario can decide which
kinds it tolerates (an OOM kill may be the expected outcome of a test).

Pure Python, no I/O: callers feed text, the classifier returns findings.
"""

from harness.console.classifier import ConsoleClassifier, classify_text
from harness.console.patterns import KINDS, PATTERNS, Pattern
from harness.console.types import Finding, Severity

__all__ = [
    "KINDS",
    "PATTERNS",
    "ConsoleClassifier",
    "Finding",
    "Pattern",
    "Severity",
    "classify_text",
]
