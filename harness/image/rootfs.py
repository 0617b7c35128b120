"""The guest's root filesystem: the busybox initramfs (default), or a Debian 12 image.

``initramfs`` -- :mod:`harness.image.build`'s busybox + dropbear image is the whole userland:
the fastest boot, static (or shipped) programs only.

``debian`` -- a Debian 12 (bookworm) root filesystem built by ``mmdebstrap`` from the *host's
configured apt sources* (``/etc/apt/sources.list`` and ``sources.list.d/*``, pasted as they
are), with the packages a scenario names (default :data:`DEFAULT_PACKAGES`) plus what the
harness needs to get in (:data:`BASE_PACKAGES`: dropbear and the SFTP server). It is stored
as a raw ext2 image (the default kernel has ``EXT2_FS``; no journal is needed for a disk no
run keeps) under ``cache_root()/rootfs/<key>/``, the key hashing the suite, the sorted
package list, the sources' text, the mmdebstrap version and :data:`FORMAT`. The entry is
built in a temp dir beside it (mmdebstrap's own temp files included, via TMPDIR) and
renamed into place sealed (:mod:`harness.cachefile`): no half-written image is ever served,
and an interrupted build leaves nothing behind.

A run boots it through a throwaway qcow2 overlay in the run dir (``qemu-img create -b IMAGE
-F raw``), so nothing a run writes reaches the cached image. The busybox initramfs is still
the early userspace: its /init (images/initramfs/init.j2) sees ``harness.root=/dev/vdX`` on
the kernel command line, mounts the disk, copies the per-run SSH keys and itself in, and
``switch_root``s; the same script then runs as the new root's init (network, cgroups, swap,
dropbear, the ready marker) with the initramfs's busybox at ``/harness/bin`` behind the
image's own PATH. SSH, QMP, swap and the event channel are the same as with the initramfs.

``host`` (``harness exec`` only) -- the host's own ``/``, read-only over virtio-9p (share
:data:`HOST_TAG`) with a tmpfs overlay for writes, mounted by the initramfs's /init at
:data:`HOST_ROOT` when the kernel command line has :data:`HOST_PARAM`; exec runs the command
chrooted there, so any host program runs unshipped (virtme-ng's way). The kernel needs
``kernel-config/`` :data:`HOST_FRAGMENT` (9p, overlayfs), which exec merges into the build.
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
from harness.errors import InfraError, SetupError, UsageError
from harness.paths import cache_root
from harness.proc import die_with_parent

log = logging.getLogger(__name__)

KINDS = ("initramfs", "debian", "host")
DEFAULT_KIND = "initramfs"
HOST_KIND = "host"  # no image: the host's / over 9p; harness exec's only (HOST_COMMANDS)
HOST_COMMANDS = ("exec",)  # the commands that chroot into it
HOST_ROOT = "/host"  # where the guest's /init mounts it
HOST_PARAM = "harness.hostroot"  # kernel command line: mount the share at HOST_ROOT
HOST_TAG = "hostroot"  # the 9p share's mount tag (QEMU's -device ... mount_tag=)
HOST_FRAGMENT = "rootfs-host"  # kernel-config/rootfs-host.config: 9p + overlayfs
SUITE = "bookworm"
FORMAT = 1  # bump when the recipe below changes what an image holds
BASE_PACKAGES = ("dropbear-bin", "openssh-sftp-server")  # the harness's way in
DEFAULT_PACKAGES = ("python3", "stress-ng")  # when a scenario (or the CLI) names none
ROOT_PARAM = "harness.root"  # kernel command line: the disk the initramfs switches to
FSTYPE = "ext2"
IMAGE_NAME = "rootfs.img"
OVERLAY_NAME = "root.qcow2"
SOURCE_FILES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9]+)?$")
# Documentation, manual pages and translations are not needed to run a test.
_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
# Debian's sftp-server is /usr/lib/openssh/sftp-server; dropbear looks for /usr/lib/sftp-server.
_HOOK = 'ln -sf openssh/sftp-server "$1/usr/lib/sftp-server"'


def check_kind(kind: str, where: str, command: str | None = None) -> str:
    """``kind`` if it is one of KINDS that ``command`` (None: a scenario's run) can boot."""
    if kind not in KINDS:
        raise UsageError(where, f"must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == HOST_KIND and command not in HOST_COMMANDS:
        raise UsageError(where, f"a {kind} rootfs is for harness {', '.join(HOST_COMMANDS)} "
                         "only (it runs the command chrooted at " + HOST_ROOT + ")")
    return kind


def check_packages(packages: Iterable[str], where: str) -> tuple[str, ...]:
    out = tuple(packages)
    for p in out:
        if not isinstance(p, str) or not _PACKAGE_RE.match(p):
            raise UsageError(where, f"{p!r} is not a Debian package name")
    return out


def package_set(packages: Sequence[str]) -> tuple[str, ...]:
    """What goes into the image: the named packages (or the default ones) and the base."""
    return tuple(sorted({*(packages or DEFAULT_PACKAGES), *BASE_PACKAGES}))


@dataclass(frozen=True)
class DebianRecipe:
    """Everything an image's content depends on (the cache key hashes all of it)."""

    suite: str
    packages: tuple[str, ...]  # sorted, base included
    sources: tuple[tuple[str, str], ...]  # (host path, text) of each apt sources file
    tool: str  # ``mmdebstrap --version``

    def key(self) -> str:
        doc = {"format": FORMAT, "suite": self.suite, "packages": list(self.packages),
               "sources": [list(s) for s in self.sources], "tool": self.tool,
               "fstype": FSTYPE, "excludes": list(_EXCLUDES), "hook": _HOOK}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def host_sources(paths: Sequence[Path] = SOURCE_FILES) -> tuple[tuple[str, str], ...]:
    """The host's apt sources files with entries in them (``*.list``, ``*.sources``)."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".list", ".sources"))
        elif p.is_file():
            files.append(p)
    out = []
    for f in files:
        text = f.read_text(errors="replace")
        if any(ln.strip() and not ln.lstrip().startswith("#") for ln in text.splitlines()):
            out.append((str(f), text))
    return tuple(out)


def mmdebstrap_argv(recipe: DebianRecipe, target: Path) -> list[str]:
    """mmdebstrap into the directory ``target``, from the recipe's sources files (each a
    MIRROR argument: an existing file's content is pasted into the chroot's sources)."""
    return ["mmdebstrap", "--mode=root", "--variant=essential", "--format=directory",
            "--include=" + ",".join(recipe.packages),
            *(f"--dpkgopt=path-exclude={e}" for e in _EXCLUDES),
            f"--customize-hook={_HOOK}",
            recipe.suite, str(target), *(path for path, _ in recipe.sources)]


def image_size_mib(content_bytes: int) -> int:
    """The filesystem's size: the content with a third again for metadata, plus 512 MiB of
    room for what a run writes (the file is sparse: unused space costs nothing)."""
    return int(content_bytes * 4 / 3) // (1 << 20) + 512


def mkfs_argv(root: Path, image: Path, size_mib: int) -> list[str]:
    """An ext2 filesystem populated from ``root`` (``mke2fs -d``), root-owned as staged."""
    return ["mke2fs", "-q", "-F", "-t", FSTYPE, "-L", "harness-root", "-E", "root_owner=0:0",
            "-d", str(root), str(image), f"{size_mib}M"]


def overlay_argv(base: Path, overlay: Path) -> list[str]:
    """A qcow2 overlay over the raw cached image: the run writes there, never to ``base``."""
    return ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
            str(overlay)]


def root_device(swap: bool) -> str:
    """The root disk's guest name: the virtio disk after the swap disk (argv order)."""
    return "/dev/vdb" if swap else "/dev/vda"


def _tool_version() -> str:
    if shutil.which("mmdebstrap") is None:
        raise SetupError("mmdebstrap", "not installed: run scripts/bootstrap "
                         "(apt-get install mmdebstrap)")
    r = subprocess.run(["mmdebstrap", "--version"], capture_output=True, text=True)
    return r.stdout.strip() or r.stderr.strip()


def recipe(packages: Sequence[str], where: str = "--rootfs debian") -> DebianRecipe:
    pkgs = package_set(check_packages(packages, where))
    sources = host_sources()
    if not sources:
        raise SetupError("/etc/apt/sources.list", "no apt sources configured on the host; "
                         "the debian rootfs is built from them")
    return DebianRecipe(SUITE, pkgs, sources, _tool_version())


@dataclass(frozen=True)
class RootfsImage:
    """A cached root filesystem image (raw)."""

    image: Path
    key: str
    packages: tuple[str, ...]


def _du(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def _run(argv: list[str], what: str, log_file: Path, env: dict[str, str]) -> None:
    with log_file.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, preexec_fn=die_with_parent())
        try:
            rc = proc.wait()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
    if rc != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-12:]
        err = next((ln for ln in reversed(tail) if ln.startswith("E:")), tail[-1] if tail else "")
        # A package that does not exist is the scenario's mistake; the rest is infrastructure.
        if "Unable to locate package" in "\n".join(tail) or "has no installation candidate" \
                in "\n".join(tail):
            raise UsageError(what, err.strip(), "\n".join(tail))
        raise InfraError(what, f"exited {rc}: {err.strip()}", "\n".join(tail))


def build_debian(packages: Sequence[str] = (), where: str = "--rootfs debian") -> RootfsImage:
    """The Debian image with ``packages`` (default :data:`DEFAULT_PACKAGES`), from the cache
    or built (a few minutes: mmdebstrap downloads and unpacks every package)."""
    r = recipe(packages, where)
    key = r.key()
    parent = cache_root() / "rootfs"
    final = parent / key
    if cachefile.verified(final, "debian rootfs"):
        log.debug("debian rootfs cached: %s", final)
        return RootfsImage(final / IMAGE_NAME, key, r.packages)
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=parent))
    try:
        log.info("building the debian rootfs (%s; %s) -- a few minutes",
                 SUITE, ", ".join(r.packages))
        env = {**os.environ, "TMPDIR": str(work), "LC_ALL": "C"}
        build_log = work / "build.log"
        root = work / "root"
        _run(mmdebstrap_argv(r, root), f"mmdebstrap {SUITE}", build_log, env)
        size = image_size_mib(_du(root))
        _run(mkfs_argv(root, work / IMAGE_NAME, size), "mke2fs", build_log, env)
        shutil.rmtree(root)
        for extra in work.iterdir():  # whatever else mmdebstrap left in its TMPDIR
            if extra.name not in (IMAGE_NAME, "build.log"):
                shutil.rmtree(extra, ignore_errors=True) if extra.is_dir() else extra.unlink()
        (work / "recipe.json").write_text(json.dumps(
            {"suite": r.suite, "packages": r.packages, "sources": [p for p, _ in r.sources],
             "tool": r.tool, "size_mib": size}, indent=1) + "\n")
        cachefile.install(work, final, "debian rootfs")
        log.info("debian rootfs built: %s (%d MiB filesystem)", final, size)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return RootfsImage(final / IMAGE_NAME, key, r.packages)


def make_overlay(base: Path, overlay: Path) -> None:
    """The run's copy-on-write disk over ``base`` (exit 3 if qemu-img fails)."""
    proc = subprocess.run(overlay_argv(base, overlay), capture_output=True, text=True)
    if proc.returncode != 0:
        raise InfraError("qemu-img", f"cannot create the root overlay: {proc.stderr.strip()}")


def resolve(kind: str, packages: Sequence[str] = (), where: str = "--rootfs",
            arch: str | None = None) -> Path | None:
    """The root image a guest boots from: None for the initramfs (no disk), else built.
    mmdebstrap builds for the host's architecture only."""
    check_kind(kind, where)
    if kind == "initramfs":
        return None
    from harness.arch import get_arch

    if not get_arch(arch).native:
        raise UsageError(where, f"a {kind} rootfs is built for the host's architecture only, "
                         f"not {get_arch(arch).name}")
    return build_debian(packages, where).image
