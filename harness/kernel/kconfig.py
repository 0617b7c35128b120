"""Kconfig fragments: parse, merge onto a base, and verify what survived.

``olddefconfig`` silently drops options whose dependencies are not met; a
harness that trusts the fragment would test a kernel without the feature
under test. So every requested option is checked against the final
``.config`` and each one that did not survive is reported with its Kconfig
dependencies. All functions here are pure except :func:`find_kconfig_symbol`,
which only reads files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UsageError

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Option:
    """A requested option: symbol (with CONFIG_ prefix), value ('y', 'm', 'n', '"str"', '123')."""

    symbol: str
    value: str
    origin: str  # "file:line"


@dataclass(frozen=True)
class Mismatch:
    """A requested option whose final value differs from the request."""

    option: Option
    actual: str  # 'n' when absent
    known: bool  # False when no Kconfig file defines the symbol
    depends: tuple[str, ...] = ()

    def describe(self) -> str:
        o = self.option
        if not self.known:
            return f"{o.symbol}: unknown symbol (no Kconfig defines it) [{o.origin}]"
        why = f"; depends on {' && '.join(self.depends)}" if self.depends else ""
        return f"{o.symbol}: requested {o.value}, got {self.actual} [{o.origin}]{why}"


def parse_config(text: str, origin: str) -> list[Option]:
    """Parse ``.config`` / fragment syntax. Raises on a line that is neither."""
    opts: list[Option] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        m = _SET.match(line)
        if m:
            opts.append(Option(m.group(1), m.group(2), f"{origin}:{lineno}"))
            continue
        m = _UNSET.match(line)
        if m:
            opts.append(Option(m.group(1), "n", f"{origin}:{lineno}"))
            continue
        if line.startswith("#"):
            continue
        raise UsageError(f"{origin}:{lineno}", f"not a Kconfig line: {line!r}")
    return opts


def config_values(text: str) -> dict[str, str]:
    """Symbol -> value for a full ``.config`` ('n' for 'is not set')."""
    return {o.symbol: o.value for o in parse_config(text, ".config")}


def merge(base_text: str, fragments: Iterable[list[Option]]) -> tuple[str, list[Option]]:
    """Merge fragments onto a base config; later fragments win.

    Returns the merged text (input for ``olddefconfig``) and the effective
    requests, one per symbol, in first-seen order.
    """
    requested: dict[str, Option] = {}
    for frag in fragments:
        for opt in frag:
            requested.pop(opt.symbol, None)
            requested[opt.symbol] = opt
    out = []
    for raw in base_text.splitlines():
        line = raw.strip()
        m = _SET.match(line) or _UNSET.match(line)
        if m and m.group(1) in requested:
            continue
        out.append(raw)
    for opt in requested.values():
        out.append(f"# {opt.symbol} is not set" if opt.value == "n" else
                   f"{opt.symbol}={opt.value}")
    return "\n".join(out) + "\n", list(requested.values())


def verify(requested: Iterable[Option], final: Mapping[str, str],
           known_symbol: Mapping[str, tuple[str, ...] | None] | None = None) -> list[Mismatch]:
    """Compare requests with the final config.

    ``known_symbol`` maps a symbol (without CONFIG_) to its ``depends on``
    expressions, or None when no Kconfig defines it; symbols it lacks are
    assumed known with no recorded dependencies.
    """
    bad = []
    for opt in requested:
        actual = final.get(opt.symbol, "n")
        if actual == opt.value:
            continue
        info: tuple[str, ...] | None = ()
        if known_symbol is not None and opt.symbol[7:] in known_symbol:
            info = known_symbol[opt.symbol[7:]]
        bad.append(Mismatch(opt, actual, info is not None, info or ()))
    return bad


_CONFIG_BLOCK = re.compile(r"^(?:menu)?config[ \t]+(\w+)[ \t]*$", re.MULTILINE)


def kconfig_dependencies(kconfig_text: str, symbol: str) -> tuple[str, ...] | None:
    """``depends on`` lines of ``symbol``'s definition in one Kconfig file, None if absent."""
    found: tuple[str, ...] | None = None
    lines = kconfig_text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(?:menu)?config\s+(\w+)\s*$", line)
        if not m or m.group(1) != symbol:
            continue
        deps = list(found or ())
        for nxt in lines[i + 1:]:
            s = nxt.strip()
            if re.match(r"^(?:menu)?config\s|^(?:endmenu|endif|menu|if|choice|endchoice|source)\b",
                        s):
                break
            d = re.match(r"^depends on\s+(.*)$", s)
            if d:
                deps.append(d.group(1))
        found = tuple(deps)
    return found


def find_kconfig_symbol(tree: Path, symbols: Iterable[str]) -> dict[str, tuple[str, ...] | None]:
    """Look up each symbol's definition and dependencies in a source tree's Kconfig files."""
    wanted = {s[7:] if s.startswith("CONFIG_") else s for s in symbols}
    result: dict[str, tuple[str, ...] | None] = dict.fromkeys(wanted)
    if not wanted:
        return result
    pattern = re.compile(r"^\s*(?:menu)?config\s+(" + "|".join(map(re.escape, wanted)) + r")\s*$",
                         re.MULTILINE)
    for path in tree.rglob("Kconfig*"):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for sym in set(pattern.findall(text)):
            deps = kconfig_dependencies(text, sym) or ()
            prev = result.get(sym) or ()
            result[sym] = tuple(prev) + tuple(deps)
    return result


def resolve_fragment(name: str, config_dir: Path) -> Path:
    """A fragment given by name (``guest``) or path; raises naming the missing one."""
    candidates = [Path(name)] if ("/" in name or name.endswith(".config")) else []
    candidates.append(config_dir / f"{name}.config")
    for c in candidates:
        if c.is_file():
            return c
    raise UsageError(name, f"config fragment not found (looked in {config_dir})")
