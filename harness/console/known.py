"""Known issues: console findings someone already triaged.

A console finding (harness.console.Finding) that matches a known issue is
not news: it has an id, maybe a report URL, someone decided whose fault it
is (``culprit``) and whether it still fails a run (``policy``).  The list
lives in TOML files: ``known-issues.toml`` at the repository root
(:data:`REPO_KNOWN_ISSUES`) and whatever file a user names.  Pure API, no
CLI: the caller decides which files to load and what a match does to its
verdict.

File format -- an array of ``[[issue]]`` tables, nothing else::

    [[issue]]
    id = "tcg-ioapic-timer"                  # required; [A-Za-z0-9._-]+, unique in the file
    title = "^kernel panic: IO-APIC \\\\+ timer"  # a Python regex, re.search on Finding.title
    # signature = "977f84c5495a11aa"         # or/and: Finding.signature, exactly
    culprit = "tool"                         # required: code | tool | harness
    policy = "warn"                          # required: fail | warn
    url = "https://lore.kernel.org/..."      # optional: where the issue is reported
    comment = "TCG under heavy host load"    # optional: free text
    version = 1                              # optional (default 1): bump on redefinition

A known issue needs ``title`` or ``signature`` (both: either may match).
``culprit`` says whose bug it is, in KCIDB's terms: ``code`` (the kernel or
patch under test), ``tool`` (what runs it: QEMU, TCG, the toolchain),
``harness`` (this project).  ``policy``: ``fail`` -- the finding still fails
the run, now with a name; ``warn`` -- it is reported and does not fail it.

API:

* :func:`load_known` ``(path) -> list[KnownIssue]``, in file order.  A file
  that cannot be read or parsed, an unknown key (top level or in an issue), a
  missing or ill-typed value, a bad regex, a duplicate id: :class:`UsageError`
  (exit status 2) whose culprit names ``file:key`` (``known-issues.toml:
  issue[2].polcy``), so the user knows what to fix.
* :func:`merge_known` ``(*lists) -> list[KnownIssue]``: the repository's list
  then a user's; a later issue with the same id replaces the earlier one in
  place.
* :func:`match` ``(findings, known) -> list[(finding, KnownIssue | None)]``:
  one pair per finding, input order kept; the issue is the first of ``known``
  that matches the finding, or None.  Pure: findings are not changed.

The KCIDB side (``harness.kcidb.issues_and_incidents``) turns the matches
into KCIDB issues and incidents.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.console.types import Finding
from harness.errors import UsageError

__all__ = [
    "CULPRITS",
    "POLICIES",
    "REPO_KNOWN_ISSUES",
    "KnownIssue",
    "load_known",
    "match",
    "merge_known",
]

#: The repository's own list of known issues.
REPO_KNOWN_ISSUES = Path(__file__).resolve().parents[2] / "known-issues.toml"

CULPRITS: tuple[str, ...] = ("code", "tool", "harness")
POLICIES: tuple[str, ...] = ("fail", "warn")

_ID = re.compile(r"[A-Za-z0-9._-]+\Z")
_SIGNATURE = re.compile(r"[0-9a-f]{16}\Z")
_KEYS = frozenset({"id", "title", "signature", "culprit", "policy", "url", "comment", "version"})


@dataclass(frozen=True, slots=True)
class KnownIssue:
    """One triaged issue: what findings it covers, whose fault it is, what it does."""

    id: str
    culprit: str
    policy: str
    #: Searched (``re.search``) in ``Finding.title``; None: match by signature only.
    title: re.Pattern[str] | None = None
    #: ``Finding.signature``, exactly; "" when matched by title only.
    signature: str = ""
    url: str = ""
    comment: str = ""
    version: int = 1
    #: ``file:issue[N]`` it was read from (for messages).
    origin: str = ""

    def matches(self, finding: Finding) -> bool:
        """Whether ``finding`` is this issue."""
        if self.signature and finding.signature == self.signature:
            return True
        return self.title is not None and self.title.search(finding.title) is not None

    @property
    def pattern(self) -> str:
        """What the issue matches on, as text (its title regex, else its signature)."""
        if self.title is not None:
            return self.title.pattern
        return f"signature {self.signature}"


def _fail(where: str, message: str) -> UsageError:
    return UsageError(where, message)


def _string(raw: dict[str, Any], key: str, where: str, required: bool = False) -> str:
    if key not in raw:
        if required:
            raise _fail(f"{where}.{key}", "missing (required)")
        return ""
    value = raw[key]
    if not isinstance(value, str):
        raise _fail(f"{where}.{key}", f"must be a string, not {type(value).__name__}")
    return value


def _issue(raw: Any, where: str) -> KnownIssue:
    if not isinstance(raw, dict):
        raise _fail(where, "must be a table ([[issue]])")
    for key in raw:
        if key not in _KEYS:
            raise _fail(f"{where}.{key}", f"unknown key (known: {', '.join(sorted(_KEYS))})")
    ident = _string(raw, "id", where, required=True)
    if not _ID.match(ident):
        raise _fail(f"{where}.id", f"{ident!r}: only letters, digits, '.', '_' and '-'")
    culprit = _string(raw, "culprit", where, required=True)
    if culprit not in CULPRITS:
        raise _fail(f"{where}.culprit", f"{culprit!r}: must be one of {', '.join(CULPRITS)}")
    policy = _string(raw, "policy", where, required=True)
    if policy not in POLICIES:
        raise _fail(f"{where}.policy", f"{policy!r}: must be one of {', '.join(POLICIES)}")
    title_rx = _string(raw, "title", where)
    signature = _string(raw, "signature", where)
    if not title_rx and not signature:
        raise _fail(where, f"issue {ident!r} needs a title regex or a signature")
    title: re.Pattern[str] | None = None
    if title_rx:
        try:
            title = re.compile(title_rx)
        except re.error as e:
            raise _fail(f"{where}.title", f"bad regex {title_rx!r}: {e}") from None
    if signature and not _SIGNATURE.match(signature):
        raise _fail(f"{where}.signature", f"{signature!r}: 16 lower-case hex digits expected")
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise _fail(f"{where}.version", f"{version!r}: a non-negative integer expected")
    return KnownIssue(
        id=ident, culprit=culprit, policy=policy, title=title, signature=signature,
        url=_string(raw, "url", where), comment=_string(raw, "comment", where),
        version=version, origin=where,
    )


def load_known(path: str | Path) -> list[KnownIssue]:
    """The known issues of one TOML file, in file order (module docstring: format).

    Raises :class:`UsageError` (exit 2) naming ``file:key`` for anything wrong.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as e:
        raise _fail(str(path), f"cannot read known issues: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise _fail(str(path), f"not valid TOML: {e}") from None
    for key in doc:
        if key != "issue":
            raise _fail(f"{path}:{key}", "unknown key (a known-issues file holds [[issue]] only)")
    raw = doc.get("issue", [])
    if not isinstance(raw, list):
        raise _fail(f"{path}:issue", "must be an array of tables ([[issue]])")
    out: list[KnownIssue] = []
    seen: dict[str, str] = {}
    for n, entry in enumerate(raw):
        issue = _issue(entry, f"{path}:issue[{n}]")
        if issue.id in seen:
            raise _fail(f"{path}:issue[{n}].id",
                        f"{issue.id!r} already defined at {seen[issue.id]}")
        seen[issue.id] = issue.origin
        out.append(issue)
    return out


def merge_known(*lists: Iterable[KnownIssue]) -> list[KnownIssue]:
    """Several lists as one: a later issue with an earlier one's id replaces it in place."""
    merged: dict[str, KnownIssue] = {}
    for issues in lists:
        for issue in issues:
            merged[issue.id] = issue
    return list(merged.values())


def match(
    findings: Iterable[Finding], known: Sequence[KnownIssue]
) -> list[tuple[Finding, KnownIssue | None]]:
    """Each finding with the first known issue it matches (or None), in input order."""
    return [(f, next((k for k in known if k.matches(f)), None)) for f in findings]
