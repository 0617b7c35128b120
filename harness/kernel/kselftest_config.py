"""The kernel configuration a kselftest target asks for, merged into the kernel under test.

A kselftest target's ``tools/testing/selftests/<target>/config`` lists the options its tests
need. A scenario that runs a target (or single programs of it) gets that file merged after the
build's own fragments, so "MADV_POPULATE_READ is not available" is no longer a skip the user
has to decode. Rules (README "Write your own test"):

- **where the file comes from**: the tree under test, series applied -- its content is a
  function of the source and the series, both in the build's cache key already, so the key
  only adds the target names (and :data:`MERGE_RECIPE`);
- **a supplement**: upstream writes these files against a defconfig-like base; on the
  harness's tinyconfig base some of their dependencies are off (mm's ``GUP_TEST`` needs
  ``DEBUG_FS``, ``madvise()`` itself needs ``ADVISE_SYSCALLS``). ``kernel-config/kselftest/
  <target>.config``, when present, supplies them and is merged right after the target's file;
- **``=m``**: the harness boots a bzImage and installs no modules, so a module is a missing
  feature. A tristate requested ``=m`` is requested ``=y`` instead, and metadata.json says so
  (``kselftest_config.<target>.m_to_y``). A non-tristate ``=m`` is left as written (and will
  be reported as not surviving);
- **what does not survive** ``olddefconfig`` fails the build like any dropped option (exit 2,
  every one listed with its reason: unset dependencies, module-only, unknown symbol), unless
  the scenario lists it in ``[kselftest] config_missing_ok`` -- an explicit opt-in, per
  option, for requests from these files only (a fragment the user wrote is never excused).
  Tolerated ones are listed in metadata.json (``kselftest_config.missing``) and logged.

Everything here is pure except :func:`read_configs`, which only reads files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import kselftest
from harness.errors import BuildError, UsageError
from harness.kernel import kconfig

log = logging.getLogger(__name__)

MERGE_RECIPE = "1"  # bump when the merge rules above change what a build gets
SELFTESTS = str(kselftest.SELFTESTS)


def config_path(target: str) -> str:
    """The target's config file, relative to the tree: ``tools/testing/selftests/mm/config``."""
    return f"{SELFTESTS}/{target}/config"


def check_targets(targets: Sequence[str], where: str) -> None:
    """Names only (the tree is read later): a bad one is a usage error naming it."""
    for t in targets:
        if not kselftest.TARGET_RE.match(t):
            raise UsageError(where, f"{t!r} is not a kselftest target name")


def supplement_path(target: str, config_dir: Path) -> Path:
    return config_dir / "kselftest" / f"{target}.config"


def supplements(targets: Sequence[str], config_dir: Path) -> list[tuple[Path, bytes]]:
    """The project's supplement of each target that has one, in target order."""
    out = []
    for t in targets:
        p = supplement_path(t, config_dir)
        if p.is_file():
            data = p.read_bytes()
            kconfig.parse_config(data.decode(), str(p))  # a syntax error now, not in the build
            out.append((p, data))
    return out


@dataclass(frozen=True)
class TargetConfig:
    """One target's requests, as merged: its own file (``m`` mapped) and its supplement."""

    target: str
    file: str  # config_path(target), "" when the target has none
    options: tuple[kconfig.Option, ...]  # the file's requests after the =m mapping
    m_to_y: tuple[str, ...]  # symbols requested =m that are requested =y instead
    supplement: str = ""  # the project's supplement file, "" if none
    supplement_options: tuple[kconfig.Option, ...] = ()

    def fragments(self) -> list[list[kconfig.Option]]:
        return [list(self.options), list(self.supplement_options)]

    def origins(self) -> tuple[str, ...]:
        return tuple(f for f in (self.file, self.supplement) if f)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file or None, "supplement": self.supplement or None,
                "options": [f"{o.symbol}={o.value}" for o in self.options],
                "supplement_options": [f"{o.symbol}={o.value}" for o in self.supplement_options],
                "m_to_y": list(self.m_to_y)}


def map_modules(options: Iterable[kconfig.Option],
                types: Mapping[str, str]) -> tuple[list[kconfig.Option], list[str]]:
    """``=m`` -> ``=y`` for each tristate (``types``: symbol without CONFIG_ -> Kconfig type);
    returns the options and the symbols mapped."""
    out, mapped = [], []
    for o in options:
        if o.value == "m" and types.get(o.symbol[7:]) == "tristate":
            out.append(kconfig.Option(o.symbol, "y", o.origin))
            mapped.append(o.symbol)
        else:
            out.append(o)
    return out, mapped


def target_config(target: str, text: str | None, types: Mapping[str, str],
                  supplement: tuple[Path, bytes] | None = None) -> TargetConfig:
    """A target's requests from its config file's ``text`` (None: the target has no file)."""
    file = config_path(target) if text is not None else ""
    opts, mapped = map_modules(kconfig.parse_config(text, file) if text is not None else [],
                               types)
    sup_file = ""
    sup_opts: tuple[kconfig.Option, ...] = ()
    if supplement is not None:
        sup_file = str(supplement[0])
        sup_opts = tuple(kconfig.parse_config(supplement[1].decode(), sup_file))
    return TargetConfig(target, file, tuple(opts), tuple(mapped), sup_file, sup_opts)


def read_configs(tree: Path, targets: Sequence[str],
                 supplement_files: Sequence[tuple[Path, bytes]]) -> list[TargetConfig]:
    """Each target's requests as the synced ``tree`` has them; a target that is not a
    selftests directory of this tree is a usage error naming it."""
    by_target = {p.stem: (p, data) for p, data in supplement_files}
    texts: dict[str, str | None] = {}
    for t in targets:
        d = tree / SELFTESTS / t
        if not d.is_dir():
            raise UsageError(f"kselftest target {t!r}",
                             f"not a directory of the tree under test ({tree / SELFTESTS})")
        f = d / "config"
        texts[t] = f.read_text(errors="replace") if f.is_file() else None
    wanted = [o.symbol for t, text in texts.items() if text is not None
              for o in kconfig.parse_config(text, config_path(t)) if o.value == "m"]
    info = kconfig.find_symbols(tree, wanted) if wanted else {}
    types = {s: i.type for s, i in info.items() if i is not None}
    return [target_config(t, texts[t], types, by_target.get(t)) for t in targets]


def all_origins(configs: Iterable[TargetConfig]) -> tuple[str, ...]:
    return tuple(o for c in configs for o in c.origins())


def metadata(configs: Sequence[TargetConfig], missing: Sequence[kconfig.Mismatch],
             allowed: Sequence[str]) -> dict[str, Any]:
    """metadata.json's ``kselftest_config``: which option came from which target, what was
    mapped, and each tolerated missing option with its reason."""
    return {"recipe": MERGE_RECIPE, "targets": {c.target: c.as_dict() for c in configs},
            "missing_ok": list(allowed),
            "missing": [{"symbol": m.option.symbol, "requested": m.option.value,
                         "actual": m.actual, "origin": m.option.origin, "reason": m.reason()}
                        for m in missing]}


def check_missing_allowed(meta: Mapping[str, Any] | None, allowed: Sequence[str],
                          where: str) -> None:
    """A cached kernel built with tolerated missing options serves a request only if that
    request tolerates each of them too (the allowance is not part of the cache key)."""
    if not meta:
        return
    names = {a if a.startswith("CONFIG_") else f"CONFIG_{a}" for a in allowed}
    bad = [m for m in meta.get("missing", []) if m.get("symbol") not in names]
    if bad:
        first = bad[0]
        raise BuildError(f"{first.get('origin')} {first.get('symbol')}",
                         f"{len(bad)} requested kselftest config option(s) are not in the "
                         f"kernel {where} (list them in [kselftest] config_missing_ok to go on)",
                         "\n".join(f"{m.get('symbol')}: requested {m.get('requested')}, got "
                                   f"{m.get('actual')} [{m.get('origin')}]; {m.get('reason')}"
                                   for m in bad))


def log_missing(missing: Sequence[kconfig.Mismatch]) -> None:
    for m in missing:
        log.warning("kselftest config: %s (tolerated: [kselftest] config_missing_ok)",
                    m.describe())


@dataclass(frozen=True)
class Merge:
    """What a build merges from kselftest targets, and which of it may go missing."""

    configs: tuple[TargetConfig, ...] = ()
    missing_ok: tuple[str, ...] = ()

    def fragments(self) -> list[list[kconfig.Option]]:
        """Option lists for :func:`harness.kernel.kconfig.merge`, after the build's own."""
        return [frag for c in self.configs for frag in c.fragments()]

    def digests(self) -> tuple[str, ...]:
        """What configure's skip stamp records of these requests (one entry per target)."""
        import hashlib

        return tuple("kselftest:" + c.target + ":" + hashlib.sha256(
            "\n".join(f"{o.symbol}={o.value}" for o in (*c.options, *c.supplement_options))
            .encode()).hexdigest() for c in self.configs)

    def split(self, bad: Iterable[kconfig.Mismatch]
              ) -> tuple[list[kconfig.Mismatch], list[kconfig.Mismatch]]:
        """(fatal, tolerated) mismatches."""
        return kconfig.partition(bad, self.missing_ok, all_origins(self.configs))

    def metadata(self, tolerated: Sequence[kconfig.Mismatch]) -> dict[str, Any] | None:
        return metadata(self.configs, tolerated, self.missing_ok) if self.configs else None


def read_merge(tree: Path, targets: Sequence[str],
               supplement_files: Sequence[tuple[Path, bytes]],
               missing_ok: Sequence[str]) -> Merge:
    if not targets:
        return Merge()
    return Merge(tuple(read_configs(tree, targets, supplement_files)), tuple(missing_ok))
