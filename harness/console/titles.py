"""Stable titles and signatures: what findings are deduplicated on.

Two runs of the same bug print different addresses, pids, CPU numbers and
timestamps; their titles must not.  Title templates (patterns.py) already
avoid those fields, but a free-form part such as a panic message may carry
them (``stack-protector: Kernel stack is corrupted in: foo+0x1a/0x30``), so
every title goes through :func:`normalise_title` once, and the signature is a
digest of the kind and that normalised title.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["CORRUPTED_PREFIX", "normalise_title", "signature_of"]

#: Title prefix of a report whose block was cut off or interleaved with
#: another one: its stack cannot be trusted, so no guilty frame is taken from it.
CORRUPTED_PREFIX = "corrupted report: "

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # fn+0x1a/0x30 [module] -> fn
    (re.compile(r"\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?(?: \[[\w ]+\])?"), ""),
    # 64-bit kernel pointers (12-16 hex digits); an exitcode=0x00000300 stays
    (re.compile(r"\b(?:0x)?[0-9a-fA-F]{12,16}\b"), "ADDR"),
    # CPU#3, cpu 3, CPU: 3, CPU3
    (re.compile(r"\b(CPU|cpu)(?:#| |: ?)?\d+\b"), r"\1"),
    # pid 42, PID: 42, pid=42, comm/42 -> comm
    (re.compile(r"\b(pid|PID)(?:: ?| |=)\d+\b"), r"\1"),
    (re.compile(r"\b([\w.-]+)/\d+\b"), r"\1"),
)
_DIGIT = re.compile(r"\d")
_SPACES = re.compile(r"\s{2,}|[^\S ]")


#: Titles repeat (a lockup is reported every few seconds): remember them.
_NORMALISED: dict[str, str] = {}
_NORMALISED_MAX = 4096


def normalise_title(title: str) -> str:
    """``title`` without run-specific numbers (idempotent)."""
    done = _NORMALISED.get(title)
    if done is not None:
        return done
    raw = title
    if _DIGIT.search(title):  # most titles have none: skip the rules
        for rx, repl in _RULES:
            title = rx.sub(repl, title)
    title = _SPACES.sub(" ", title).strip()
    if len(_NORMALISED) >= _NORMALISED_MAX:
        _NORMALISED.clear()
    _NORMALISED[raw] = title
    return title


def signature_of(kind: str, title: str) -> str:
    """A short stable digest of kind + normalised title (16 hex digits)."""
    key = f"{kind}\0{normalise_title(title)}".encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()
