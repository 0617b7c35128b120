"""What a failed kernel build said, read from its whole log (pure functions).

With ``make -jN`` the compiler's message is followed by the output of every other job that was
still running, so the tail of the log rarely holds a diagnostic (a cold build dir with ``-j2``
prints dozens of ``CC`` lines after it). The error a developer needs is therefore taken from
the whole log: gcc's diagnostic blocks that contain an error -- with the "In function" and
"In file included from" lines, the warnings and notes and the caret excerpts gcc prints with
them -- in order and deduplicated, then make's innermost failed target.
"""

from __future__ import annotations

import re

COMPILE_ERROR = re.compile(r"^(\S+?):(\d+):(?:\d+:)? (?:fatal )?error: (.*)$")
LINK_ERROR = re.compile(r"(undefined reference to .*|multiple definition of .*)$")

# A line gcc (or ld) prints as part of a diagnostic.
_DIAG = re.compile(r"^\S+?:\d+(?::\d+)?: (?:fatal error|error|warning|note): ")
_CONTEXT = re.compile(
    r"^(?:\S+: In (?:function|member function|static function) .*:"
    r"|\S+: At (?:top level|global scope):"
    r"|In file included from \S+"
    r"|\s+from \S+[:,]"
    r"|\s*\d* \|.*"                      # gcc's source excerpt: "   14 | code" / "      | ^~~"
    r"|cc1: (?:all )?warnings being treated as errors"
    r"|(?:\S*/)?(?:\S+-)?ld(?:\.bfd|\.lld|\.gold)?: .*"   # the linker's own lines
    r"|\S+:\(\.\S+\+0x[0-9a-f]+\): .*"   # "x.c:(.text+0x1): undefined reference to ..."
    r")$")
_MAKE_FAILED = re.compile(r"^make(?:\[\d+\])?: \*\*\* .*")
_IS_ERROR = re.compile(r"(?:^|: )(?:fatal error|error): |undefined reference|multiple definition")

MAX_LINES = 80


def first_build_error(log_text: str) -> tuple[str, str] | None:
    """(culprit, message) of the first compile or link error in a build log, if any."""
    for line in log_text.splitlines():
        m = COMPILE_ERROR.match(line.strip())
        if m:
            return f"{m.group(1)}:{m.group(2)}", m.group(3)
    for line in log_text.splitlines():
        m = LINK_ERROR.search(line)
        if m and ("ld" in line or "undefined" in line):
            return "link", m.group(1)
    if "No space left on device" in log_text:
        return "disk", "no space left on device during the build"
    for line in log_text.splitlines():
        if line.startswith("make") and "***" in line:
            return "make", line.strip()
    return None


def _blocks(lines: list[str]) -> list[list[str]]:
    """Runs of diagnostic lines; an interleaved line of another job does not end a run."""
    blocks: list[list[str]] = []
    cur: list[str] = []
    for line in lines:
        if _DIAG.match(line) or _CONTEXT.match(line):
            cur.append(line)
        elif cur and (line.startswith("  ") and line.split(maxsplit=1)[0].isupper()):
            continue  # "  CC      fs/libfs.o" from another job, in the middle of gcc's output
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    return blocks


_HEADER = re.compile(r"^(?:\S+: (?:In |At )|In file included from )")
_NOTE = re.compile(r"^\S+?:\d+(?::\d+)?: note: ")


def _units(block: list[str]) -> list[list[str]]:
    """One diagnostic per unit: its "In ..." headers, the message, its excerpt and notes."""
    units: list[list[str]] = []
    cur: list[str] = []
    has_diag = False
    for line in block:
        starts = (_HEADER.match(line) is not None
                  or (_DIAG.match(line) is not None and not _NOTE.match(line))
                  or _IS_ERROR.search(line) is not None)
        if starts and has_diag:
            units.append(cur)
            cur, has_diag = [], False
        cur.append(line)
        has_diag = has_diag or bool(_DIAG.match(line) or _IS_ERROR.search(line))
    if cur:
        units.append(cur)
    return units


def _file_of(unit: list[str]) -> str:
    """The file a unit's message is about (another -j job's warnings name another file)."""
    for line in unit:
        if _DIAG.match(line):
            return line.split(":", 1)[0]
    return ""


def diagnostics(log_text: str, max_lines: int = MAX_LINES) -> str:
    """The compiler's and linker's error diagnostics, then the make target that failed.

    Blocks without an error (warnings of objects that compiled) are left out; a diagnostic
    printed before (a header's error seen from two objects) is printed once. When the log
    holds no diagnostic at all, its last lines are all there is.
    """
    lines = [ln.rstrip("\n") for ln in log_text.splitlines()]
    out: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for block in _blocks(lines):
        units = _units(block)
        error_files = {_file_of(u) for u in units if any(_IS_ERROR.search(ln) for ln in u)}
        for unit in units:
            key = tuple(ln for ln in unit if _DIAG.match(ln) or _IS_ERROR.search(ln))
            if _file_of(unit) not in error_files or (key and key in seen):
                continue  # another object's warnings, or printed already
            seen.add(key)
            out.extend(unit)
    failed = [ln for ln in lines if _MAKE_FAILED.match(ln)]
    if not out:
        tail = lines[-40:]
        return "\n".join(tail + [ln for ln in failed[:1] if ln not in tail])
    if len(out) > max_lines:
        out = out[:max_lines] + [f"... {len(out) - max_lines} more diagnostic lines in the log"]
    if failed:
        out.append(failed[0])
    return "\n".join(out)
