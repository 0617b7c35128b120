"""Console classifier: find kernel problem reports in serial console / dmesg text.

The kernel says what went wrong in its own words (``Kernel panic - not
syncing``, ``BUG:``, ``WARNING: CPU: ...``, ``invoked oom-killer`` ...).
This package turns that text into typed :class:`Finding` objects so that the
VM runtime can stop early on a fatal one and a scenario can decide which
kinds it tolerates (an OOM kill may be the expected outcome of a test).

Each finding's title says what kind of bug it is in the field's words
(syzbot's: "KASAN: use-after-free Read in F", "possible deadlock in F") and
blames the guilty function (not the reporting helper on top of the stack),
and carries a stable ``signature``, so findings of the same bug group
together across runs (:func:`group_by_signature`).

Pure Python, no I/O: callers feed text, the classifier returns findings.
"""

from harness.console.classifier import ConsoleClassifier, classify_text, guilty_frame
from harness.console.dedup import FindingGroup, group_by_signature
from harness.console.patterns import (
    KINDS,
    PATTERNS,
    SKIP_RULES,
    Pattern,
    Retitle,
    SkipRule,
    skip_regex,
)
from harness.console.titles import normalise_title, signature_of
from harness.console.types import Finding, Severity

__all__ = [
    "KINDS",
    "PATTERNS",
    "SKIP_RULES",
    "ConsoleClassifier",
    "Finding",
    "FindingGroup",
    "Pattern",
    "Retitle",
    "Severity",
    "SkipRule",
    "classify_text",
    "group_by_signature",
    "guilty_frame",
    "normalise_title",
    "signature_of",
    "skip_regex",
]
