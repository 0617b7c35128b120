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
_TOKEN = re.compile(r"[A-Za-z0-9_]+")


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
    unset: tuple[str, ...] = ()  # symbols of ``depends`` that are n in the final config

    @property
    def module_only(self) -> bool:
        """``depends on m``: only ever a module, and the harness builds none."""
        return any("m" in _TOKEN.findall(d) for d in self.depends)

    def reason(self) -> str:
        """Why it did not survive, as far as its Kconfig definition says."""
        if not self.known:
            return "unknown symbol (no Kconfig defines it)"
        if self.module_only:
            return "module-only (depends on m) and the harness builds no modules"
        if not self.depends:
            return ""
        unset = f" ({', '.join(self.unset)} not set)" if self.unset else ""
        return f"depends on {' && '.join(self.depends)}{unset}"

    def describe(self) -> str:
        o = self.option
        if not self.known:
            return f"{o.symbol}: {self.reason()} [{o.origin}]"
        why = self.reason()
        return f"{o.symbol}: requested {o.value}, got {self.actual} [{o.origin}]" + (
            f"; {why}" if why else "")


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
        bad.append(Mismatch(opt, actual, info is not None, info or (),
                            unset_dependencies(info or (), final)))
    return bad


def unset_dependencies(depends: Iterable[str], final: Mapping[str, str]) -> tuple[str, ...]:
    """The symbols named in ``depends on`` expressions that are n in ``final``, except those
    only ever negated (``!X``): a hint, not a Kconfig evaluator."""
    out: dict[str, None] = {}
    for expr in depends:
        negated = set(re.findall(r"!\s*([A-Za-z0-9_]+)", expr))
        for tok in _TOKEN.findall(expr):
            if tok in ("y", "m", "n") or tok.isdigit() or tok in negated:
                continue
            if final.get(f"CONFIG_{tok}", "n") == "n":
                out.setdefault(tok, None)
    return tuple(out)


def partition(bad: Iterable[Mismatch], tolerated: Iterable[str],
              origins: Iterable[str]) -> tuple[list[Mismatch], list[Mismatch]]:
    """(fatal, tolerated): a mismatch is tolerated only when its symbol is in ``tolerated``
    and it was requested from a file in ``origins`` (an explicit opt-in for those requests,
    never for a fragment the user wrote)."""
    names = {t if t.startswith("CONFIG_") else f"CONFIG_{t}" for t in tolerated}
    files = tuple(f"{o}:" for o in origins)
    fatal: list[Mismatch] = []
    ok: list[Mismatch] = []
    for b in bad:
        (ok if b.option.symbol in names and b.option.origin.startswith(files) else fatal).append(b)
    return fatal, ok


_CONFIG_BLOCK = re.compile(r"^(?:menu)?config[ \t]+(\w+)[ \t]*$", re.MULTILINE)


_BLOCK_END = re.compile(r"^(?:menu)?config\s|^(?:endmenu|endif|menu|if|choice|endchoice|source"
                        r"|comment|mainmenu)\b")


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def _blank_help(lines: list[str]) -> list[str]:
    """``lines`` with every help text line made empty (indices kept): help text is prose, and
    a help line that starts with "if " or "depends on" is neither (MEMCG's help text has
    "if a git-based tree is found", which once read as an ``if`` block)."""
    out: list[str] = []
    help_at: int | None = None
    for line in lines:
        if help_at is not None:
            if not line.strip() or _indent(line) > help_at:
                out.append("")
                continue
            help_at = None
        if line.strip() in ("help", "---help---"):
            help_at = _indent(line)
        out.append(line)
    return out


def kconfig_dependencies(kconfig_text: str, symbol: str) -> tuple[str, ...] | None:
    """The dependencies of ``symbol``'s definitions in one Kconfig file -- its ``depends on``
    lines and the ``if`` blocks of this file around it --, None if the file does not define
    it. (Menus' ``depends on`` and ``if`` blocks of the file that sources this one are not
    seen: a reason, not a Kconfig evaluator.)"""
    found: tuple[str, ...] | None = None
    lines = _blank_help(kconfig_text.splitlines())
    ifs: list[str] = []
    for i, line in enumerate(lines):
        s = line.strip()
        cond = re.match(r"^if\s+(.+?)\s*(?:#.*)?$", s)
        if cond:
            ifs.append(cond.group(1))
            continue
        if re.match(r"^endif\b", s):
            if ifs:
                ifs.pop()
            continue
        m = re.match(r"^\s*(?:menu)?config\s+(\w+)\s*$", line)
        if not m or m.group(1) != symbol:
            continue
        deps = list(found or ())
        deps += [c for c in ifs if c not in deps]
        for nxt in lines[i + 1:]:
            t = nxt.strip()
            if _BLOCK_END.match(t):
                break
            d = re.match(r"^depends on\s+(.*)$", t)
            if d:
                deps.append(d.group(1))
        found = tuple(deps)
    return found


_TYPES = ("bool", "tristate", "string", "int", "hex")


def kconfig_type(kconfig_text: str, symbol: str) -> str | None:
    """The type of ``symbol`` (bool, tristate, string, int, hex) as one Kconfig file defines
    it (``def_bool``/``def_tristate`` count), "" if a definition gives none, None if absent."""
    found: str | None = None
    lines = kconfig_text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(?:menu)?config\s+(\w+)\s*$", line)
        if not m or m.group(1) != symbol:
            continue
        found = found or ""
        for nxt in lines[i + 1:]:
            s = nxt.strip()
            if _BLOCK_END.match(s):
                break
            t = re.match(r"^(?:def_)?(bool|tristate|string|int|hex)\b", s)
            if t:
                return t.group(1)
    return found


@dataclass(frozen=True)
class Symbol:
    """A Kconfig symbol as the tree's Kconfig files define it (all definitions together)."""

    type: str  # one of _TYPES, "" if no definition says
    depends: tuple[str, ...]


def find_symbols(tree: Path, symbols: Iterable[str]) -> dict[str, Symbol | None]:
    """Each symbol's (name without CONFIG_) type and dependencies, None where no Kconfig
    file of ``tree`` defines it. Reads every Kconfig* file once."""
    wanted = {s[7:] if s.startswith("CONFIG_") else s for s in symbols}
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    if not wanted:
        return {}
    pattern = re.compile(r"^\s*(?:menu)?config\s+(" + "|".join(map(re.escape, wanted)) + r")\s*$",
                         re.MULTILINE)
    for path in tree.rglob("Kconfig*"):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for sym in sorted(set(pattern.findall(text))):
            kind, deps = found.get(sym, ("", ()))
            found[sym] = (kind or kconfig_type(text, sym) or "",
                          deps + (kconfig_dependencies(text, sym) or ()))
    return {s: (Symbol(*found[s]) if s in found else None) for s in sorted(wanted)}


def find_kconfig_symbol(tree: Path, symbols: Iterable[str]) -> dict[str, tuple[str, ...] | None]:
    """Look up each symbol's definition and dependencies in a source tree's Kconfig files."""
    return {s: (None if info is None else info.depends)
            for s, info in find_symbols(tree, symbols).items()}


def resolve_fragment(name: str, config_dir: Path) -> Path:
    """A fragment given by name (``guest``) or path; raises naming the missing one."""
    candidates = [Path(name)] if ("/" in name or name.endswith(".config")) else []
    candidates.append(config_dir / f"{name}.config")
    for c in candidates:
        if c.is_file():
            return c
    raise UsageError(name, f"config fragment not found (looked in {config_dir})")
