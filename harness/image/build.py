"""Build the guest's base initramfs from host Debian packages, cached by content hash.

The image is the same for every run of a given recipe, so it is built once and
reused: the cache key hashes the recipe (manifest, init template, builder
format) *and the bytes of every host file that goes in*, so a Debian package
upgrade produces a new image rather than a stale one. Output is reproducible
(root-owned, mtime 0, sorted entries) and written to a temp file then renamed,
so concurrent builders never see a half-written archive.

Per-run secrets never enter this image; see :func:`harness.image.runfiles`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import subprocess
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from harness import cachefile
from harness.arch import X86_64, Arch
from harness.errors import SetupError, UsageError
from harness.image import elf, rootfs
from harness.image.cpio import Entry, write_newc
from harness.paths import PROJECT_ROOT, cache_root

log = logging.getLogger(__name__)

RECIPE_DIR = PROJECT_ROOT / "images" / "initramfs"
READY_PREFIX = "HARNESS-READY-"
NONCE_PARAM = "harness.nonce"
SWAP_DEVICE = "/dev/vda"
GUEST_IP = "10.0.2.15"
GATEWAY = "10.0.2.2"


@dataclass(frozen=True)
class GuestImage:
    """A built base initramfs. ``key`` is the content hash it is cached under."""

    initramfs: Path
    key: str


def template_vars() -> dict[str, Any]:
    """Values the init template is rendered with (shared with the VM side)."""
    return {
        "ready_prefix": READY_PREFIX,
        "nonce_param": NONCE_PARAM,
        "swap_device": SWAP_DEVICE,
        "guest_ip": GUEST_IP,
        "prefix": 24,
        "gateway": GATEWAY,
        "root_param": rootfs.ROOT_PARAM,
        "root_fstype": rootfs.FSTYPE,
        "host_param": rootfs.HOST_PARAM,
        "host_tag": rootfs.HOST_TAG,
        "host_root": rootfs.HOST_ROOT,
    }


def render_init(recipe_dir: Path = RECIPE_DIR) -> str:
    """Render ``init.j2``. StrictUndefined: a typo in the template fails loudly."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(recipe_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template("init.j2").render(**template_vars())


_LDD_RE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def shared_libs(binary: Path, arch: Arch = X86_64) -> list[str]:
    """Absolute paths of the shared libraries and ELF interpreter ``binary`` needs.

    On the host's own architecture ``ldd`` resolves the full transitive closure and names
    the interpreter, which is exactly the set the guest's loader will look for. For another
    architecture's program (``ldd`` would have to run it) :func:`harness.image.elf.resolve_libs`
    reads the ELF and finds the same set in that architecture's multiarch directories.
    A static binary yields an empty list.
    """
    if not arch.native:
        return elf.resolve_libs(binary, arch.lib_dirs)
    proc = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        if "not a dynamic executable" in proc.stdout + proc.stderr:
            return []
        raise SetupError(str(binary), "ldd failed", proc.stderr)
    libs = []
    for line in proc.stdout.splitlines():
        if "not found" in line:
            raise SetupError(str(binary), f"missing shared library: {line.strip()}")
        m = _LDD_RE.search(line)
        if m:
            libs.append(m.group(1))
    return sorted(set(libs))


def with_shared_libs(files: Mapping[str, Path], what: str,
                     arch: Arch = X86_64) -> dict[str, Path]:
    """``files`` ({guest path: host path}) plus the shared libraries and ELF interpreter of
    every dynamic ELF among them (inside shipped directories too), at the same paths in the
    guest as on the host -- what lets a developer's own dynamic program, or the host's
    stress-ng, run in the busybox guest. A library the host lacks is exit 2, naming ``what``
    (``--ship``, a TOML's ``[[ship]]``), the binary and the library; so is a program of
    another architecture than the guest's ``arch``."""
    out = dict(files)
    for src in files.values():
        cands = ([src] if src.is_file() else
                 sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink())
                 if src.is_dir() else [])
        for p in cands:
            with p.open("rb") as f:
                head = f.read(64)
            if not elf.is_elf(head):
                continue
            machine = elf.elf_machine(head)
            if machine != arch.elf_machine:
                raise UsageError(f"{what} {src}", f"{p} is a {elf.MACHINES.get(machine, machine)}"
                                 f" program; the guest is {arch.name}")
            try:
                libs = shared_libs(p, arch)
            except SetupError as exc:
                raise UsageError(f"{what} {src}", f"{p}: {exc.message}") from exc
            for lib in libs:
                out.setdefault(lib, Path(lib))
    return out


def _busybox_applets(busybox: Path, arch: Arch = X86_64) -> list[str]:
    if not arch.native:
        return applets_from_binary(busybox.read_bytes(), str(busybox))
    proc = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    return sorted(a for a in proc.stdout.split() if a and "/" not in a and a != "busybox")


_APPLET_TABLE = b"[\0[[\0"
_APPLET_NAME = re.compile(rb"[\x21-\x7e]+")


def applets_from_binary(data: bytes, what: str) -> list[str]:
    """A busybox's applet names without running it (another architecture's): its
    ``applet_names`` table, the sorted NUL-separated names that start with ``[`` and ``[[``
    (measured: the same 269 names as ``busybox --list`` for Debian 12's amd64 and arm64
    busybox-static)."""
    i = data.find(_APPLET_TABLE)
    if i < 0:
        raise SetupError(what, "no applet table found: is it a busybox with the test applets?")
    out = []
    while True:
        j = data.index(b"\0", i)
        name = data[i:j]
        if not name or not _APPLET_NAME.fullmatch(name):
            break
        out.append(name.decode())
        i = j + 1
    return sorted(a for a in out if "/" not in a and a != "busybox")


def _read_host(path: str | Path, why: str) -> bytes:
    p = Path(path)
    if not p.exists():
        raise SetupError(str(p), f"missing on the host (needed for {why}); run scripts/bootstrap")
    return p.read_bytes()


def load_manifest(recipe_dir: Path = RECIPE_DIR) -> dict[str, Any]:
    with open(recipe_dir / "manifest.toml", "rb") as f:
        return tomllib.load(f)


def collect_entries(
    extra_files: dict[str, Path] | None = None, recipe_dir: Path = RECIPE_DIR,
    arch: Arch = X86_64,
) -> list[Entry]:
    """Every archive member of the base image, in no particular order. The manifest's host
    programs are ``arch``'s (under its userland root); their libraries its multiarch ones."""
    man = load_manifest(recipe_dir)
    entries: dict[str, Entry] = {}

    def add(e: Entry) -> None:
        entries[e.path] = e

    bb = man["busybox"]
    bb_path = arch.userland(bb["host"])
    add(Entry.file(f"{bb['applet_dir']}/busybox", _read_host(bb_path, "busybox"), 0o755))
    for applet in _busybox_applets(bb_path, arch):
        add(Entry.symlink(f"{bb['applet_dir']}/{applet}", "busybox"))

    for b in man.get("binary", []):
        host = arch.userland(b["host"])
        add(Entry.file(b["guest"], _read_host(host, b["guest"]), 0o755))
        for lib in shared_libs(host, arch):
            add(Entry.file(lib, _read_host(os.path.realpath(lib), str(host)), 0o755))

    for guest, target in man.get("symlinks", {}).items():
        add(Entry.symlink(guest, target))
    for guest, text in man.get("files", {}).items():
        add(Entry.file(guest, text.encode()))
    for guest, mode in man.get("dirs", {}).items():
        add(Entry.dir(guest, int(mode)))
    # The kernel opens /dev/console for init before devtmpfs is mounted.
    add(Entry.chardev("/dev/console", 5, 1))
    add(Entry.chardev("/dev/null", 1, 3, 0o666))
    add(Entry.file("/init", render_init(recipe_dir).encode(), 0o755))

    for guest, host in sorted((extra_files or {}).items()):
        if not guest.startswith("/"):
            raise UsageError(guest, "extra file guest paths must be absolute")
        src = Path(host)
        mode = src.stat().st_mode if src.exists() else 0o644
        add(Entry.file(guest, _read_host(src, guest), stat.S_IMODE(mode) | 0o644))
    return list(entries.values())


def _entries_key(entries: list[Entry]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.path):
        h.update(f"{e.path}\0{e.mode:o}\0{e.rdev_major}:{e.rdev_minor}\0".encode())
        h.update(hashlib.sha256(e.data).digest())
    return h.hexdigest()[:24]


def build_image(
    extra_files: dict[str, Path] | None = None, recipe_dir: Path = RECIPE_DIR,
    arch: Arch = X86_64,
) -> GuestImage:
    """Build (or reuse from the cache) the base initramfs.

    ``extra_files`` maps guest paths to host files baked in at build time (a
    test's binaries); they take part in the cache key.
    """
    entries = collect_entries(extra_files, recipe_dir, arch)
    fmt = load_manifest(recipe_dir).get("format", 0)
    key = f"{fmt}-{_entries_key(entries)}"
    out_dir = cache_root() / "images" / key
    out = out_dir / "initramfs.cpio"
    if cachefile.verified(out_dir, "guest image") and out.exists():
        log.debug("guest image cache hit: %s", out)
        return GuestImage(out, key)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".initramfs.", dir=out_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            write_newc(f, entries)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
        cachefile.seal(out_dir)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("built guest image %s (%d entries, %d KiB)", key, len(entries),
             out.stat().st_size // 1024)
    return GuestImage(out, key)
