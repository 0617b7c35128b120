"""Result types of the console classifier."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is.

    Only a real panic is ``FATAL``: the guest is gone and waiting for it any
    longer is pointless.  ``ERROR`` means the kernel hit a bug but may go on
    (Oops, BUG, lockups); ``WARNING`` is a report the kernel survives by
    design (WARN_ON, lockdep, a global OOM kill); ``INFO`` is expected
    behaviour that a scenario may still want to see (a memcg OOM kill).
    """

    FATAL = "fatal"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(slots=True)
class Finding:
    """One kernel report found on the console.

    ``line`` is the 1-based line of the report's first line in the whole
    stream fed so far (the ``cut here`` line when there is one).  ``block``
    is the report from that line to its end marker, console prefixes kept.

    Not frozen on purpose: a panic is published as soon as its first line is
    seen (so that the VM runtime can stop waiting), and its ``block`` then
    grows in place until the panic's end marker or ``close()``.
    """

    kind: str
    title: str
    severity: Severity
    line: int
    block: str

    def to_dict(self) -> dict[str, object]:
        """The comparable part of a finding (what golden sidecars store)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "severity": self.severity.value,
            "line": self.line,
        }
