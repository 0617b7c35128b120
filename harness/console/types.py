"""Result types of the console classifier."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from harness.console.titles import signature_of


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

    ``title`` is "<kind> in <guilty function>" with no address, pid or CPU
    number in it, so the same bug gets the same title on every run;
    ``guilty`` is that function ("" when the report names none).
    ``corrupted`` says the block was cut off or interleaved with another
    report: its title then starts with ``corrupted report: `` and names at
    most the function on the report's own first line, never one from its
    body (which may belong to another report); ``guilty`` is then "".  ``signature`` is a short
    digest of kind + title, what matrix and bisect reports group on.

    Not frozen on purpose: a panic is published as soon as its first line is
    seen (so that the VM runtime can stop waiting), and its ``block`` then
    grows in place until the panic's end marker or ``close()``.
    """

    kind: str
    title: str
    severity: Severity
    line: int
    block: str
    corrupted: bool = False
    guilty: str = ""

    @property
    def signature(self) -> str:
        """Stable 16-hex-digit digest of kind + normalised title."""
        return signature_of(self.kind, self.title)

    def to_dict(self) -> dict[str, object]:
        """The comparable part of a finding (what golden sidecars store)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "severity": self.severity.value,
            "line": self.line,
            "guilty": self.guilty,
            "corrupted": self.corrupted,
            "signature": self.signature,
        }
