"""Build the C programs that run in the guest (``workloads/<name>/*.c``).

Every ``.c`` file of a workload directory is one static program, compiled
with ``gcc -static -O2 -Wall -Wextra -Werror -pthread`` (the guest architecture's compiler:
``aarch64-linux-gnu-gcc`` for arm64) so that it runs in the busybox-only guest. Results are
cached under
``cache_root()/workloads/<key>/`` where the key hashes the sources and the
compiler's ``--version``: a source edit or a compiler upgrade rebuilds,
anything else reuses. A build goes to a temporary directory first and is
renamed into place, so an interrupted or concurrent build never leaves a
half-filled cache entry behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import cachefile
from harness.arch import X86_64, Arch
from harness.errors import BuildError, SetupError
from harness.paths import PROJECT_ROOT, cache_root

log = logging.getLogger(__name__)

CFLAGS = ("-static", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread")
_ERROR_RE = re.compile(r"(^|: )(fatal )?error: ")
# Plain ASCII diagnostics whatever the host locale.
_GCC_ENV = {**os.environ, "LC_ALL": "C"}


def workloads_root() -> Path:
    """The directory holding one subdirectory per workload."""
    return PROJECT_ROOT / "workloads"


def _compiler_version(cc: str = X86_64.cc) -> str:
    try:
        out = subprocess.run(
            [cc, "--version"], capture_output=True, text=True, check=True, env=_GCC_ENV
        )
    except FileNotFoundError as exc:
        raise SetupError(cc, "compiler not found; run scripts/bootstrap") from exc
    except subprocess.CalledProcessError as exc:
        raise SetupError(cc, f"'{cc} --version' failed", exc.stderr) from exc
    return out.stdout


def _cache_key(sources: list[Path], compiler: str) -> str:
    h = hashlib.sha256()
    h.update(compiler.encode())
    h.update(" ".join(CFLAGS).encode())
    for src in sources:
        h.update(b"\0" + src.name.encode() + b"\0")
        h.update(src.read_bytes())
    return h.hexdigest()


def _first_error_line(output: str) -> str:
    lines = output.splitlines()
    for line in lines:
        if _ERROR_RE.search(line):
            return line.strip()
    return next((ln.strip() for ln in lines if ln.strip()), "compilation failed")


def _binaries(directory: Path, sources: list[Path]) -> dict[str, Path]:
    return {src.stem: directory / src.stem for src in sources}


def build_workload(name: str, root: Path | None = None,
                   arch: Arch = X86_64) -> dict[str, Path]:
    """Compile every ``<root>/<name>/*.c`` statically for ``arch``; return ``{program: path}``.

    ``root`` defaults to the project's ``workloads/`` directory. Raises
    :class:`UsageError`-family :class:`BuildError` (culprit: the ``.c`` file)
    when a program does not compile, :class:`SetupError` when gcc is missing.
    """
    src_dir = (root if root is not None else workloads_root()) / name
    sources = sorted(src_dir.glob("*.c"))
    if not sources:
        raise BuildError(str(src_dir), f"workload '{name}' has no .c sources")

    cc = arch.cc
    key = _cache_key(sources, _compiler_version(cc))
    parent = cache_root() / "workloads"
    final = parent / key
    if cachefile.verified(final, f"workload {name}"):
        bins = _binaries(final, sources)
        if all(p.is_file() for p in bins.values()):
            log.debug("workload %s: cached in %s", name, final)
            return bins

    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=parent))
    try:
        for src in sources:
            out = tmp / src.stem
            cmd = [cc, *CFLAGS, "-o", str(out), str(src)]
            log.info("workload %s: compiling %s", name, src.name)
            proc = subprocess.run(cmd, capture_output=True, text=True, env=_GCC_ENV)
            if proc.returncode != 0:
                output = proc.stderr + proc.stdout
                raise BuildError(str(src), _first_error_line(output), output)
        cachefile.install(tmp, final, f"workload {name}")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("workload %s: built in %s", name, final)
    return _binaries(final, sources)
