"""Build a kernel from (source, series, config) into a content-addressed artifact cache.

Flow: resolve the source -> load the series -> compute the cache key from the
inputs -> on a hit return at once; otherwise, under a per-lineage lock, sync
the harness's own work tree (base + series), configure in the persistent
build directory (base config + fragments, ``olddefconfig``, verify every
requested option survived), ``make <the architecture's image>`` (bzImage, Image) through
ccache, cross-compiled where the architecture is not the host's, with pinned
KBUILD_BUILD_* variables, then copy the outputs into a temp directory and
rename it into the cache. A half-built artifact never sits under its final
name, whatever interrupts the build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from harness import cachefile
from harness.arch import DEFAULT_ARCH, DEFAULT_PAGE_SIZE, Arch, get_arch
from harness.errors import BuildError, SetupError, UsageError
from harness.kernel import buildlog, configstamp, kconfig, kselftest_config
from harness.kernel.progress import DEFAULT_TOTAL_ESTIMATE, ProgressCallback, ProgressTracker
from harness.kernel.series import Patch, load_series
from harness.kernel.source import Source, resolve_source
from harness.kernel.tree import WorkTree
from harness.paths import PROJECT_ROOT, cache_root
from harness.proc import die_with_parent

log = logging.getLogger(__name__)

RECIPE_VERSION = "1"  # bump when the build procedure changes what it produces
CONFIG_DIR = PROJECT_ROOT / "kernel-config"
DEFAULT_SERIES = (PROJECT_ROOT / "patches" / "mempressure-shrinker",)
DEFAULT_FRAGMENTS = ("guest", "mempressure", "mempressure-shrinker")
BASE_TARGETS = ("tinyconfig", "allnoconfig", "defconfig", "tiny.config", "kvm_guest.config")

PINNED_ENV = {
    "KBUILD_BUILD_TIMESTAMP": "1970-01-01 00:00:00 UTC",
    "KBUILD_BUILD_USER": "harness",
    "KBUILD_BUILD_HOST": "harness",
    "KBUILD_BUILD_VERSION": "1",
}


@dataclass(frozen=True)
class BuildRequest:
    """What to build. The defaults are the project's flagship: 6.12 + the mempressure series."""

    source: str | Path | None = None
    rev: str | None = None
    series: tuple[Path, ...] = DEFAULT_SERIES
    fragments: tuple[str, ...] = DEFAULT_FRAGMENTS
    base: str = "tinyconfig"
    jobs: int | None = None
    arch: str = DEFAULT_ARCH  # a name in harness.arch.ARCHES
    page_size: str | None = None  # "4k", "16k", "64k" (None: the architecture's default)
    # kselftest targets whose config file is merged after the fragments (kselftest_config.py)
    kselftest_configs: tuple[str, ...] = ()
    config_missing_ok: tuple[str, ...] = ()  # their options that may fail to survive


@dataclass(frozen=True)
class Artifact:
    """A built kernel in the cache."""

    dir: Path
    key: str
    metadata: dict[str, Any] = field(compare=False)

    @property
    def arch(self) -> Arch:
        return get_arch(str(self.metadata.get("arch", DEFAULT_ARCH)))

    @property
    def bzimage(self) -> Path:
        """The bootable kernel image (``bzImage`` on x86_64, ``Image`` on arm64)."""
        return self.dir / self.arch.image_name

    @property
    def config(self) -> Path:
        return self.dir / "config"

    @property
    def system_map(self) -> Path:
        return self.dir / "System.map"

    @property
    def build_log(self) -> Path:
        return self.dir / "build.log"


@cache
def toolchain_id(cross_compile: str = "") -> str:
    """Compiler and linker versions: a different toolchain is a different kernel."""
    parts = []
    for cmd in ([f"{cross_compile}gcc", "--version"], [f"{cross_compile}ld", "--version"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SetupError(cmd[0], "not found or not working: run scripts/bootstrap",
                             str(exc)) from exc
        parts.append(out.splitlines()[0].strip())
    return " | ".join(parts)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ResolvedInputs:
    source: Source
    patches: list[Patch]
    fragments: list[tuple[Path, bytes]]
    base: str
    base_text: bytes | None
    arch: Arch
    page_size: str | None = None
    kselftest: tuple[str, ...] = ()  # targets whose config is merged
    kselftest_supplements: tuple[tuple[Path, bytes], ...] = ()
    missing_ok: tuple[str, ...] = ()

    def cache_key(self) -> str:
        doc = {
            "recipe": RECIPE_VERSION,
            "arch": self.arch.name,
            "source": self.source.identity,
            "series": [f"{p.strip}:{p.sha256}" for p in self.patches],
            "base": self.base if self.base_text is None else _sha256(self.base_text),
            "fragments": [_sha256(data) for _, data in self.fragments],
            "toolchain": toolchain_id(self.arch.cross_compile),
        }
        doc.update(self._kselftest_key())
        return _sha256(json.dumps(doc, sort_keys=True).encode())

    def _kselftest_key(self) -> dict[str, Any]:
        """The targets' config files are the tree's (source and series: in the key already);
        absent when there are none, so that every other key stays what it was."""
        if not self.kselftest:
            return {}
        return {"kselftest_configs": [kselftest_config.MERGE_RECIPE, *self.kselftest,
                                      *(_sha256(d) for _, d in self.kselftest_supplements)]}


def resolve_inputs(req: BuildRequest) -> ResolvedInputs:
    """Validate and read every input up front, before any long work starts.

    The architecture's own fragments (``kernel-config/arch-*.config``: its console, its PCI
    host, its page size) come after the requested ones, so that they win."""
    arch = get_arch(req.arch)
    arch_frags = (*arch.fragments, *arch.page_fragment(req.page_size))
    patches: list[Patch] = []
    for s in req.series:
        patches += load_series(Path(s))
    frags = []
    for name in (*req.fragments, *arch_frags):
        path = kconfig.resolve_fragment(name, CONFIG_DIR)
        data = path.read_bytes()
        kconfig.parse_config(data.decode(), str(path))  # syntax errors now, not after 10 min
        frags.append((path, data))
    base_text = None
    if req.base not in BASE_TARGETS:
        bp = Path(req.base)
        if not bp.is_file():
            raise UsageError(f"--base {req.base}",
                             f"neither a config file nor one of {', '.join(BASE_TARGETS)}")
        base_text = bp.read_bytes()
    kselftest_config.check_targets(req.kselftest_configs, "kselftest config")
    sups = tuple(kselftest_config.supplements(req.kselftest_configs, CONFIG_DIR))
    source = resolve_source(req.source, req.rev)
    return ResolvedInputs(source, patches, frags, req.base, base_text, arch, req.page_size,
                          tuple(req.kselftest_configs), sups, tuple(req.config_missing_ok))


def cached_artifact(key: str) -> Artifact | None:
    """The cached kernel of ``key``, if it is there and intact (a damaged one is discarded)."""
    d = cache_root() / "artifacts" / key[:24]
    if not cachefile.verified(d, "kernel artifact"):
        return None
    return Artifact(d, key, json.loads((d / "metadata.json").read_text()))


@contextmanager
def _lineage_lock(lineage: str) -> Iterator[None]:
    lock_path = cache_root() / "lineages" / f"{lineage}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another build of the same source to finish")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _make_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PINNED_ENV)
    env["CCACHE_DIR"] = str(cache_root() / "ccache")
    env["CCACHE_BASEDIR"] = str(cache_root())
    env["CCACHE_COMPILERCHECK"] = "content"
    env.setdefault("LC_ALL", "C")
    return env


def _ccache_available() -> bool:
    return shutil.which("ccache") is not None


def _cc(cross_compile: str = "") -> str:
    cc = f"{cross_compile}gcc"
    return f"ccache {cc}" if _ccache_available() else cc


def _ccache_stats(env: dict[str, str]) -> dict[str, int]:
    if not _ccache_available():
        return {}
    r = subprocess.run(["ccache", "--print-stats"], capture_output=True, text=True, env=env)
    stats: dict[str, int] = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition("\t")
        if v.strip().isdigit():
            stats[k] = int(v)
    return stats


def source_record(src: Source) -> dict[str, Any]:
    """What a kernel was built from, as metadata, plans and bisects record it: the kind and
    place, the content identity (the tarball's sha256), the kernel version its Makefile
    declares and, for Debian's tarball, the package version (it moves between machines)."""
    return {"kind": src.kind, "location": str(src.location), "identity": src.identity,
            "rev": src.rev, "version": src.version, "package": src.package}


def config_id(inputs: ResolvedInputs) -> str:
    """What a build dir's configuration depends on: the base and the fragments' contents."""
    base = inputs.base if inputs.base_text is None else _sha256(inputs.base_text)
    frags = ",".join(_sha256(data) for _, data in inputs.fragments)
    ks = json.dumps(inputs._kselftest_key()) if inputs.kselftest else ""
    return _sha256(f"{base}|{frags}{ks}".encode())[:12]


def lineage_dirs(inputs: ResolvedInputs) -> tuple[Path, Path]:
    """The lineage's work tree and the build dir for this configuration.

    ``<lineage>/src`` and ``<lineage>/build-<config>``: the same relative layout for every
    lineage, so that with CCACHE_BASEDIR the compiler sees "../src/..." paths and ccache hits
    across lineages (a git tree and the tarball of the same release share objects). One build
    dir per configuration: switching between, say, the default and the debug configuration
    rebuilds only what the series changed, not the whole kernel both ways.
    """
    root = cache_root() / "lineages" / inputs.source.lineage
    return root / "src", root / f"build-{config_id(inputs)}"


class KernelBuilder:
    """Tree operations for one request: sync, configure, make, store. One class, one lineage."""

    def __init__(self, inputs: ResolvedInputs, jobs: int | None = None,
                 progress: ProgressCallback | None = None) -> None:
        self.inputs = inputs
        self.jobs = jobs or os.cpu_count() or 1
        src, self.build_dir = lineage_dirs(inputs)
        self.tree = WorkTree(src, inputs.source)
        self.env = _make_env()
        self.progress = progress
        self.log_path = self.build_dir / "harness-build.log"
        self._ksmerge: kselftest_config.Merge | None = None
        self.missing: list[kconfig.Mismatch] = []  # tolerated kselftest options not in .config

    def kselftest_merge(self) -> kselftest_config.Merge:
        """The kselftest targets' requests as the synced tree has them (read once)."""
        if self._ksmerge is None:
            i = self.inputs
            self._ksmerge = kselftest_config.read_merge(self.tree.root, i.kselftest,
                                                        i.kselftest_supplements, i.missing_ok)
        return self._ksmerge

    def requested_fragments(self) -> list[list[kconfig.Option]]:
        """Every option list configure merges, in order: fragments, then kselftest configs."""
        return [*(kconfig.parse_config(data.decode(), str(path))
                  for path, data in self.inputs.fragments),
                *self.kselftest_merge().fragments()]

    def _make(self, *targets: str, kconfig_file: str | None = None,
              tracker: ProgressTracker | None = None, log_file: Path | None = None) -> str:
        arch = self.inputs.arch
        cmd = ["make", "-C", str(self.tree.root), f"O={self.build_dir}",
               f"ARCH={arch.make_arch}", f"-j{self.jobs}"]
        if arch.cross_compile:
            cmd.append(f"CROSS_COMPILE={arch.cross_compile}")
        if _ccache_available():
            cmd += [f"CC={_cc(arch.cross_compile)}", f"HOSTCC={_cc()}"]
        if kconfig_file:
            cmd.append(f"KCONFIG_CONFIG={kconfig_file}")
        cmd += list(targets)
        log.debug("running %s", " ".join(cmd))
        lines: list[str] = []
        out = log_file.open("a") if log_file else None
        try:
            # make dies with the harness, even on SIGKILL: an orphaned make must not race
            # the next build in the same build dir once the lineage lock is free.
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, errors="replace", env=self.env, bufsize=1,
                                    preexec_fn=die_with_parent())
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    lines.append(line)
                    if out:
                        out.write(line)
                    if tracker:
                        tracker.feed(line.rstrip("\n"))
                rc = proc.wait()
            except BaseException:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                raise
        finally:
            if out:
                out.close()
        text = "".join(lines)
        if rc != 0:
            err = buildlog.first_build_error(text)
            culprit, msg = err if err else (" ".join(targets), f"make exited with {rc}")
            where = f" (full log: {log_file})" if log_file else ""
            raise BuildError(culprit, msg + where, buildlog.diagnostics(text))
        return text

    def configure(self, tracker: ProgressTracker) -> tuple[str, list[kconfig.Option]]:
        """Base config + fragments -> olddefconfig -> verified final config text."""
        tracker.set_stage("configure")
        bd = self.build_dir
        base_file = ".config.harness-base"
        if self.inputs.base_text is None:
            self._make(self.inputs.base, kconfig_file=base_file, log_file=self.log_path)
            base_text = (bd / base_file).read_text()
        else:
            base_text = self.inputs.base_text.decode()
        merged, requested = kconfig.merge(base_text, self.requested_fragments())
        new_file = ".config.harness-new"
        (bd / new_file).write_text(merged)
        self._make("olddefconfig", kconfig_file=new_file, log_file=self.log_path)
        final = (bd / new_file).read_text()
        bad = kconfig.verify(requested, kconfig.config_values(final))
        if bad:
            deps = kconfig.find_kconfig_symbol(self.tree.root, [b.option.symbol for b in bad])
            bad = kconfig.verify(requested, kconfig.config_values(final), deps)
        bad, self.missing = self.kselftest_merge().split(bad)
        kselftest_config.log_missing(self.missing)
        if bad:
            first = bad[0].option
            raise BuildError(f"{first.origin} {first.symbol}",
                             f"{len(bad)} requested config option(s) did not survive "
                             "olddefconfig",
                             "\n".join(b.describe() for b in bad))
        cur = bd / ".config"
        if not cur.is_file() or cur.read_text() != final:
            (bd / new_file).replace(cur)  # only a real change touches .config (keeps make no-op)
        return final, requested

    def configure_inputs(self) -> configstamp.ConfigureInputs:
        """What configure reads, for the skip decision (call after the tree is synced)."""
        i = self.inputs
        return configstamp.ConfigureInputs(
            recipe=f"{RECIPE_VERSION}/{configstamp.CONFIGURE_RECIPE}", arch=i.arch.name,
            source=i.source.identity,
            base=i.base if i.base_text is None else "sha256:" + _sha256(i.base_text),
            fragments=(*(_sha256(data) for _, data in i.fragments),
                       *self.kselftest_merge().digests()),
            kconfig_overlay=configstamp.kconfig_overlay(self.tree.overlay),
            toolchain=toolchain_id(i.arch.cross_compile), cc=_cc(i.arch.cross_compile))

    def configure_if_needed(self, tracker: ProgressTracker) -> tuple[str, str | None]:
        """(final config text, why configure ran -- None if skipped).

        Skipped when the stamp says the last configure in this build dir had the same
        inputs and ``.config`` is still what it wrote; the requested options are then
        re-verified against that ``.config`` in Python (milliseconds) all the same.
        """
        bd = self.build_dir
        cfg_inputs = self.configure_inputs()
        cur = bd / ".config"
        current = cur.read_text() if cur.is_file() else None
        reason = configstamp.configure_reason(configstamp.read_stamp(bd), cfg_inputs, current)
        if reason is None and current is not None:
            _, requested = kconfig.merge("", self.requested_fragments())
            bad, missing = self.kselftest_merge().split(
                kconfig.verify(requested, kconfig.config_values(current)))
            if not bad:
                if missing:  # their reasons, as the configure that tolerated them gave
                    deps = kconfig.find_kconfig_symbol(self.tree.root,
                                                       [m.option.symbol for m in missing])
                    _, self.missing = self.kselftest_merge().split(
                        kconfig.verify(requested, kconfig.config_values(current), deps))
                log.info("configure skipped: inputs and .config unchanged since the last one")
                return current, None
            reason = "a requested option is not in .config"
        log.info("configure: %s", reason)
        configstamp.clear_stamp(bd)
        final, _ = self.configure(tracker)
        configstamp.write_stamp(bd, configstamp.stamp_for(cfg_inputs, final))
        return final, reason

    def run(self) -> Artifact:
        t0 = time.monotonic()
        key = self.inputs.cache_key()
        tracker = ProgressTracker(self.progress, self._estimate())
        tracker.set_stage("sync tree")
        changed = self.tree.sync(self.inputs.patches)
        t_sync = time.monotonic()
        self.build_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text("")
        final_config, configure_reason = self.configure_if_needed(tracker)
        t_cfg = time.monotonic()
        before = _ccache_stats(self.env)
        tracker.set_stage("compile")
        try:
            self._make(self.inputs.arch.make_target, tracker=tracker, log_file=self.log_path)
        except OSError as exc:
            raise BuildError("disk", f"build I/O failed: {exc}") from exc
        after = _ccache_stats(self.env)
        t_make = time.monotonic()
        if tracker.compiled > self._estimate() // 2:
            (self.build_dir / ".harness-objcount").write_text(str(tracker.compiled))
        hits = sum(after.get(k, 0) - before.get(k, 0)
                   for k in ("direct_cache_hit", "preprocessed_cache_hit"))
        misses = after.get("cache_miss", 0) - before.get("cache_miss", 0)
        release = (self.build_dir / "include/config/kernel.release").read_text().strip()
        meta: dict[str, Any] = {
            "key": key,
            "kernel_release": release,
            "source": source_record(self.inputs.source),
            "series": [{"name": p.name, "origin": p.origin, "sha256": p.sha256}
                       for p in self.inputs.patches],
            "fragments": [{"path": str(p), "sha256": _sha256(d)} for p, d in self.inputs.fragments],
            "base": self.inputs.base,
            "config_sha256": _sha256(final_config.encode()),
            "toolchain": toolchain_id(self.inputs.arch.cross_compile),
            "arch": self.inputs.arch.name,
            "page_size": self.inputs.page_size or DEFAULT_PAGE_SIZE,
            "kselftest_config": self.kselftest_merge().metadata(self.missing),
            "files_changed_by_sync": changed,
            "configure": configure_reason or "skipped: inputs and .config unchanged",
            "objects_compiled": tracker.compiled,
            "ccache": {"hits": hits, "misses": misses} if after else None,
            "durations_s": {"sync": round(t_sync - t0, 2), "config": round(t_cfg - t_sync, 2),
                            "make": round(t_make - t_cfg, 2), "total": round(t_make - t0, 2)},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        tracker.set_stage("store artifact")
        art = self._store(key, final_config, meta)
        log.info("built %s in %.0fs (%d objects compiled, ccache %d hits / %d misses)",
                 release, t_make - t0, tracker.compiled, hits, misses)
        return art

    def _estimate(self) -> int:
        try:
            return int((self.build_dir / ".harness-objcount").read_text())
        except (OSError, ValueError):
            return DEFAULT_TOTAL_ESTIMATE

    def _store(self, key: str, final_config: str, meta: dict[str, Any]) -> Artifact:
        root = cache_root() / "artifacts"
        root.mkdir(parents=True, exist_ok=True)
        final = root / key[:24]
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        try:
            arch = self.inputs.arch
            shutil.copy2(self.build_dir / arch.image_path, tmp / arch.image_name)
            shutil.copy2(self.build_dir / "System.map", tmp / "System.map")
            shutil.copy2(self.log_path, tmp / "build.log")
            (tmp / "config").write_text(final_config)
            (tmp / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
            cachefile.install(tmp, final, "kernel artifact")
        except OSError as exc:
            raise BuildError("disk", f"cannot store the artifact: {exc}") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return Artifact(final, key, meta)


@contextmanager
def synced_tree(req: BuildRequest) -> Iterator[Path]:
    """The lineage's work tree holding exactly ``req``'s source and series, locked meanwhile.

    For building things from the tree under test (the series' kselftest): on a cache hit the
    tree holds whatever series was synced last, and another process may re-sync it at any
    moment; under the lock and after this sync it is the tree ``req`` names.
    """
    inputs = resolve_inputs(req)
    src, _ = lineage_dirs(inputs)
    with _lineage_lock(inputs.source.lineage):
        WorkTree(src, inputs.source).sync(inputs.patches)
        yield src


def build_kernel(req: BuildRequest | None = None,
                 progress: ProgressCallback | None = None) -> Artifact:
    """Build (or fetch from cache) the kernel described by ``req``."""
    req = req or BuildRequest()
    inputs = resolve_inputs(req)
    key = inputs.cache_key()
    hit = cached_artifact(key)
    if hit:
        log.info("kernel artifact cached: %s", hit.dir)
    else:
        with _lineage_lock(inputs.source.lineage):
            hit = cached_artifact(key)  # another process may have built it while we waited
            if hit is None:
                hit = KernelBuilder(inputs, req.jobs, progress).run()
    kselftest_config.check_missing_allowed(hit.metadata.get("kselftest_config"),
                                           req.config_missing_ok, str(hit.dir))
    return hit
