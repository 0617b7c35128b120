"""Build kselftest targets from the kernel source under test, ready to ship to the guest.

``make -C tools/testing/selftests TARGETS=<t> install`` is the kernel's own way; we run it on a
*copy* of the tree's ``tools/`` (kselftest Makefiles write generated files next to their
sources, and the harness's work tree belongs to the kernel build), with the tree's UAPI
headers from ``make O=<tmp> headers`` (our kernel's, not the host's), and
``USERLDFLAGS=-static`` so the programs run in the busybox guest. A target that cannot link
statically is rebuilt dynamically and its shared libraries (``ldd``, loader included) are
shipped at their host paths.

Results are cached by content under ``cache_root()/kselftests/<key>/``: the key hashes every
input file (the targets' directories, the kselftest framework, ``tools/include``, the UAPI
headers), the target list and the compiler, so a patch to a test or a header rebuilds and
nothing else does. A build goes to a temporary directory first and is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import cachefile
from harness.arch import X86_64, Arch
from harness.errors import BuildError, SetupError, UsageError
from harness.paths import cache_root

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the layout of a cache entry changes
GUEST_ROOT = "/opt/kselftest"  # <target>/ lands under here, beside run_kselftest.sh
SELFTESTS = Path("tools/testing/selftests")
TARGET_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
# What a kselftest build reads besides the targets' own directories (and the architecture's
# UAPI headers, Arch.uapi_dir).
_COMMON_INPUTS = ("tools/include", "tools/scripts", "tools/build", "include/uapi",
                  "scripts/subarch.include", "Makefile", str(SELFTESTS / "kselftest"))
_ERROR_RE = re.compile(r"(^|: )(fatal )?error: |undefined reference|cannot find -l|No rule to make "
                       r"target|failed: No such file")
_ENV = {**os.environ, "LC_ALL": "C"}


@dataclass(frozen=True)
class KselftestBuild:
    """An installed kselftest tree: ``install/`` as ``make install`` laid it out."""

    dir: Path
    targets: tuple[str, ...]
    libs: tuple[str, ...]  # host paths of shared libraries dynamic programs need ("" if none)

    @property
    def install_dir(self) -> Path:
        return self.dir / "install"

    def ship(self) -> dict[str, Path]:
        """``{guest path: host path}``: the install tree at GUEST_ROOT, libraries in place."""
        out = {GUEST_ROOT: self.install_dir}
        out.update({lib: Path(lib) for lib in self.libs})
        return out


def split_program(entry: str) -> tuple[str, str]:
    """``"mm/mlock2-tests"`` -> ``("mm", "mlock2-tests")``: a program of a target."""
    target, _, prog = entry.rpartition("/")
    return target, prog


def validate_targets(tree: Path, targets: Sequence[str], where: str,
                     programs: Sequence[str] = ()) -> None:
    """Every target (and every program's target) is a selftests directory with a Makefile."""
    if not targets and not programs:
        raise UsageError(where, "needs at least one kselftest target or program")
    for t in [*targets, *(split_program(p)[0] for p in programs)]:
        if not t or not TARGET_RE.match(t):
            raise UsageError(where, f"{t!r} is not a kselftest target name")
        if not (tree / SELFTESTS / t / "Makefile").is_file():
            raise UsageError(where, f"kselftest target {t!r} does not exist in {tree / SELFTESTS}")
    for p in programs:
        if not TARGET_RE.match(split_program(p)[1]):
            raise UsageError(where, f"{p!r} is not TARGET/PROGRAM")


def _files(root: Path, rel: str) -> Iterable[Path]:
    p = root / rel
    if p.is_file():
        yield p
    elif p.is_dir():
        yield from sorted(x for x in p.rglob("*") if x.is_file() and not x.is_symlink())


def _selftest_top_files(tree: Path) -> list[Path]:
    return sorted(x for x in (tree / SELFTESTS).iterdir() if x.is_file())


_TOP_SRCDIR_REF = re.compile(r"\$\(top_srcdir\)/([\w/.+-]+)")


def _outside_refs(tree: Path, target: str) -> list[str]:
    """Files outside tools/ a target's Makefile names (``$(top_srcdir)/mm/gup_test.h``)."""
    mk = (tree / SELFTESTS / target / "Makefile").read_text(errors="replace")
    return sorted({m.group(1) for m in _TOP_SRCDIR_REF.finditer(mk)
                   if not m.group(1).startswith(("tools/", "usr/"))})


def cache_key(tree: Path, what: Sequence[str], compiler: str, dirs: Sequence[str],
              arch: Arch = X86_64) -> str:
    """Hash of every file the build reads (as far as the Makefiles say) -- the ``dirs``
    (target directories) and the common inputs --, what is built, and the compiler."""
    h = hashlib.sha256(f"kselftest {FORMAT}\0{compiler}\0{' '.join(what)}\0".encode())
    inputs = [*_selftest_top_files(tree)]
    common = [*_COMMON_INPUTS[:4], arch.uapi_dir, *_COMMON_INPUTS[4:]]
    rels = [*common, *(str(SELFTESTS / t) for t in dirs),
            *(r for t in dirs for r in _outside_refs(tree, t))]
    for rel in rels:
        inputs.extend(_files(tree, rel))
    for f in inputs:
        h.update(str(f.relative_to(tree)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()


def _compiler(arch: Arch = X86_64) -> str:
    try:
        return subprocess.run([arch.cc, "--version"], capture_output=True, text=True,
                              check=True, env=_ENV).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SetupError(arch.cc, f"compiler not usable: {exc}") from exc


def cross_args(arch: Arch) -> list[str]:
    """make's ARCH/CROSS_COMPILE for a target other than the host's (none on the host's)."""
    return ([f"ARCH={arch.make_arch}", f"CROSS_COMPILE={arch.cross_compile}"]
            if arch.cross_compile else [])


def _first_error(output: str) -> str:
    for line in output.splitlines():
        if _ERROR_RE.search(line):
            return line.strip()
    tail = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return tail[-1] if tail else "make failed"


def _make(args: list[str], log_file: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["make", *args], capture_output=True, text=True, env=_ENV)
    with log_file.open("a") as f:
        f.write(f"$ make {' '.join(args)}\n{proc.stdout}{proc.stderr}\n")
    return proc


def _stage(tree: Path, work: Path, jobs: int, log_file: Path, arch: Arch = X86_64) -> Path:
    """A private tree: tools/ copied (kselftest writes there), every other top-level entry a
    symlink to the real tree (Makefiles read e.g. mm/gup_test.h); plus the tree's UAPI
    headers. Returns the headers' include dir."""
    src = work / "src"
    src.mkdir()
    for entry in tree.iterdir():
        if entry.name == "tools":
            shutil.copytree(entry, src / "tools", symlinks=True)
        elif entry.name not in ("usr", ".git"):
            (src / entry.name).symlink_to(entry)
    hdr = work / "hdr"
    proc = _make(["-C", str(tree), f"O={hdr}", f"-j{jobs}", *cross_args(arch), "headers"],
                 log_file)
    if proc.returncode != 0:
        raise BuildError(f"{tree} make headers", _first_error(proc.stdout + proc.stderr),
                         (proc.stdout + proc.stderr)[-4000:])
    return hdr / "usr" / "include"


def _build_target(src: Path, work: Path, target: str, common: list[str],
                  log_file: Path) -> bool:
    """Build one target, statically if it can be; returns whether it linked statically."""
    base = ["-C", str(src / SELFTESTS), f"TARGETS={target}", *common]
    proc = _make([*base, "USERLDFLAGS=-static", "all"], log_file)
    if proc.returncode == 0:
        return True
    log.info("kselftest %s: static link failed, building it dynamically", target)
    shutil.rmtree(work / "obj" / "kselftest" / target, ignore_errors=True)
    proc = _make([*base, "all"], log_file)
    if proc.returncode != 0:
        out = proc.stdout + proc.stderr
        raise BuildError(f"kselftest target {target}", _first_error(out), out[-4000:])
    return False


def _dynamic_libs(install: Path, arch: Arch = X86_64) -> list[str]:
    from harness.image.build import shared_libs  # ldd: transitive closure + interpreter

    libs: set[str] = set()
    for f in install.rglob("*"):
        if f.is_file() and not f.is_symlink() and f.read_bytes()[:4] == b"\x7fELF":
            libs.update(shared_libs(f, arch))
    return sorted(libs)


def _build_programs(src: Path, work: Path, target: str, progs: Sequence[str],
                    common: list[str], log_file: Path) -> bool:
    """Build single programs of a target (whose whole build may not compile on this tree)
    with the target's own Makefile; install them beside its config/settings files."""
    out = work / "obj" / "kselftest" / target
    out.mkdir(parents=True, exist_ok=True)
    base = ["-C", str(src / SELFTESTS / target), f"OUTPUT={out}",
            *(c for c in common if not c.startswith("O=")), *(str(out / p) for p in progs)]
    static = True
    proc = _make([*base, "USERLDFLAGS=-static"], log_file)
    if proc.returncode != 0:
        static = False
        log.info("kselftest %s: static link failed, building dynamically", target)
        proc = _make(base, log_file)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        bad = next((p for p in progs if f"{out / p}]" in text or f"{p}.c:" in text),
                   ",".join(progs))
        raise BuildError(f"kselftest program {target}/{bad}", _first_error(text), text[-4000:])
    dest = work / "install" / target
    dest.mkdir(parents=True, exist_ok=True)
    for p in progs:
        shutil.copy2(out / p, dest / p)
    for extra in ("config", "settings"):
        f = src / SELFTESTS / target / extra
        if f.is_file():
            shutil.copy2(f, dest / extra)
    return static


def build_kselftests(tree: Path, targets: Sequence[str], programs: Sequence[str] = (),
                     jobs: int | None = None, arch: Arch = X86_64) -> KselftestBuild:
    """Build and install whole ``targets`` (``make install``) and single ``programs``
    ("target/program") from ``tree`` for ``arch`` (cross-compiled when it is not the host's),
    cached; a BuildError names the failing one."""
    targets, programs = tuple(targets), tuple(programs)
    validate_targets(tree, targets, f"{tree} kselftest", programs)
    if targets and shutil.which("rsync") is None:
        raise SetupError("rsync", "not found; kselftest's install target needs it "
                         "(apt-get install rsync)")
    prog_targets = sorted({split_program(p)[0] for p in programs})
    key = cache_key(tree, [*targets, *programs, *(f"{t}/" for t in prog_targets)],
                    _compiler(arch), [*targets, *prog_targets], arch)
    parent = cache_root() / "kselftests"
    final = parent / key
    meta = final / "metadata.json"
    if cachefile.verified(final, "kselftest build") and meta.is_file():
        data = json.loads(meta.read_text())
        log.debug("kselftests %s: cached in %s", ",".join(targets + programs), final)
        return KselftestBuild(final, targets + programs, tuple(data.get("libs", [])))
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=parent))
    try:
        log_file = work / "build.log"
        n = jobs or os.cpu_count() or 1
        hdr = _stage(tree, work, n, log_file, arch)
        src = work / "src"
        common = [f"O={work / 'obj'}", f"KHDR_INCLUDES=-isystem {hdr}", f"-j{n}",
                  *cross_args(arch)]
        static = {}
        for t in targets:
            log.info("kselftest: building target %s", t)
            static[t] = _build_target(src, work, t, common, log_file)
        if targets:
            proc = _make(["-C", str(src / SELFTESTS), f"TARGETS={' '.join(targets)}", *common,
                          *(["USERLDFLAGS=-static"] if all(static.values()) else []),
                          "install", f"INSTALL_PATH={work / 'install'}"], log_file)
            if proc.returncode != 0:
                out = proc.stdout + proc.stderr
                raise BuildError(f"kselftest targets {','.join(targets)} install",
                                 _first_error(out), out[-4000:])
        for t in prog_targets:
            progs = [split_program(p)[1] for p in programs if split_program(p)[0] == t]
            log.info("kselftest: building %s programs %s", t, ", ".join(progs))
            static[f"{t}/"] = _build_programs(src, work, t, progs, common, log_file)
        libs = _dynamic_libs(work / "install", arch)
        shutil.rmtree(work / "src")
        shutil.rmtree(work / "obj", ignore_errors=True)
        shutil.rmtree(work / "hdr")
        (work / "metadata.json").write_text(json.dumps(
            {"targets": targets, "programs": programs, "static": static, "libs": libs,
             "source_tree": str(tree)}, indent=1))
        cachefile.install(work, final, "kselftest build")
        log.info("kselftests %s: built in %s", ",".join(targets + programs), final)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    data = json.loads(meta.read_text())
    return KselftestBuild(final, targets + programs, tuple(data.get("libs", [])))
