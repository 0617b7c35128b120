"""When may a build skip configure? A record of what the last configure depended on.

Configure (``make <base>`` + fragment merge + ``olddefconfig`` + verification) costs
several seconds on every build, even when nothing it reads has changed -- more than
the compile of a one-file edit. Its output, ``.config``, depends only on: the base
config (a make target evaluated over the tree's Kconfig files, or a file's content),
each fragment's content, the Kconfig language files (and the configs and scripts
``make <base>`` reads) as the applied series leaves them, the pristine source they
start from, the toolchain (Kconfig probes the compiler), and the harness's recipe.

So after a successful configure the build directory gets a stamp: a digest of those
inputs, the inputs themselves (to name what changed), and the sha256 of the
``.config`` configure left. A later build skips configure only when both the inputs
and the ``.config`` on disk match. The build directory is shared by every build of a
lineage (other series, other fragments), so any other build's configure rewrites the
stamp and ``.config`` -- and a hand edit changes the hash: either way configure runs
again. Everything here is pure except :func:`read_stamp`, :func:`write_stamp` and
:func:`clear_stamp`, which only touch the stamp file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

STAMP_NAME = ".harness-configure.json"
CONFIGURE_RECIPE = "1"  # bump when configure() changes what it produces from the same inputs

# A series file with one of these suffixes cannot change what configure produces --
# unless it lives under one of _ALWAYS_RELEVANT (Kconfig's own tools and probes).
_CODE_SUFFIXES = frozenset({".c", ".h", ".S", ".rs", ".rst", ".txt", ".md", ".lds"})
_ALWAYS_RELEVANT = ("scripts/",)
_NEVER_RELEVANT = ("Documentation/", "tools/testing/", "samples/")


def configure_relevant(path: str) -> bool:
    """Could a series changing ``path`` change the ``.config`` configure writes?

    Deliberately over-inclusive: only plain code and documentation are excluded, so a
    Kconfig*, a ``*.config`` fragment that ``make tinyconfig`` merges, a Makefile (the
    version in ``.config``'s header) or anything under ``scripts/`` forces a configure.
    """
    if path.startswith(_ALWAYS_RELEVANT):
        return True
    if path.startswith(_NEVER_RELEVANT):
        return False
    p = PurePosixPath(path)
    if p.name.startswith("Kconfig"):
        return True
    return p.suffix not in _CODE_SUFFIXES


@dataclass(frozen=True)
class ConfigureInputs:
    """Everything configure's output depends on, as identities (no file contents)."""

    recipe: str  # the build recipe and the configure recipe, "build/configure"
    arch: str
    source: str  # the pristine source's identity
    base: str  # a make target name, or "sha256:<hex>" of a base config file
    fragments: tuple[str, ...]  # sha256 of each fragment, in order
    kconfig_overlay: tuple[tuple[str, str | None], ...]  # (path, sha256 or None = deleted)
    toolchain: str
    cc: str  # the CC= make gets (Kconfig probes it)

    def as_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe, "arch": self.arch, "source": self.source,
                "base": self.base, "fragments": list(self.fragments),
                "kconfig_overlay": [list(e) for e in self.kconfig_overlay],
                "toolchain": self.toolchain, "cc": self.cc}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


def kconfig_overlay(overlay: Mapping[str, str | None]) -> tuple[tuple[str, str | None], ...]:
    """The configure-relevant part of a series overlay (path -> sha256 of patched content)."""
    return tuple(sorted((p, h) for p, h in overlay.items() if configure_relevant(p)))


@dataclass(frozen=True)
class Stamp:
    """What the build directory's last successful configure depended on and produced."""

    inputs: dict[str, Any]
    digest: str
    config_sha256: str

    def to_json(self) -> str:
        return json.dumps({"inputs": self.inputs, "digest": self.digest,
                           "config_sha256": self.config_sha256}, indent=1, sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Stamp | None:
        try:
            doc = json.loads(text)
            inputs, digest, sha = doc["inputs"], doc["digest"], doc["config_sha256"]
        except (ValueError, KeyError, TypeError):
            return None
        if not (isinstance(inputs, dict) and isinstance(digest, str) and isinstance(sha, str)):
            return None
        return Stamp(inputs, digest, sha)


def stamp_for(inputs: ConfigureInputs, config_text: str) -> Stamp:
    return Stamp(inputs.as_dict(), inputs.digest(), sha256_text(config_text))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def configure_reason(stamp: Stamp | None, inputs: ConfigureInputs,
                     config_text: str | None) -> str | None:
    """Why configure must run, or None when it may be skipped.

    ``config_text`` is the build directory's current ``.config`` (None if absent).
    """
    if config_text is None:
        return "no .config in the build directory"
    if stamp is None:
        return "no record of a previous configure"
    if stamp.digest != inputs.digest():
        now = inputs.as_dict()
        changed = sorted(k for k in now.keys() | stamp.inputs.keys()
                         if now.get(k) != stamp.inputs.get(k))
        return f"changed since the last configure: {', '.join(changed) or 'digest'}"
    if stamp.config_sha256 != sha256_text(config_text):
        return ".config changed since the last configure"
    return None


def read_stamp(build_dir: Path) -> Stamp | None:
    try:
        return Stamp.from_json((build_dir / STAMP_NAME).read_text())
    except OSError:
        return None


def write_stamp(build_dir: Path, stamp: Stamp) -> None:
    """Atomically: a reader sees the old stamp, the new one, or none -- never half of one."""
    fd, tmp = tempfile.mkstemp(prefix=".harness-stamp-", dir=build_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(stamp.to_json())
        os.replace(tmp, build_dir / STAMP_NAME)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def clear_stamp(build_dir: Path) -> None:
    """Before configure touches anything: an interrupted configure must not look complete."""
    try:
        (build_dir / STAMP_NAME).unlink()
    except FileNotFoundError:
        pass
