"""Per-run secrets for the guest: an SSH client key, a host key, and a tiny cpio.

The cached base image is shared by every run, so it must hold no keys. Each run
instead writes a second newc archive carrying ``/etc/dropbear`` host key and
``/root/.ssh/authorized_keys`` and hands QEMU ``base + run`` concatenated as one
``-initrd`` (the kernel unpacks concatenated archives in order; later members
overwrite earlier ones). Because we generate the host key ourselves, the host
side can pin it and need not trust whatever answers on the forwarded port.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.image.cpio import Entry, write_newc

log = logging.getLogger(__name__)

HOST_KEY_GUEST_PATH = "/etc/dropbear/dropbear_ed25519_host_key"


@dataclass(frozen=True)
class RunKeys:
    """Keys for one run. ``host_key_line`` is ``None`` when dropbear makes its own."""

    client_key: paramiko.PKey
    client_public_line: str
    host_key_blob: bytes | None
    host_key_line: str | None


def make_client_key() -> tuple[paramiko.PKey, str]:
    """A fresh Ed25519 client key (paramiko cannot generate Ed25519 itself)."""
    priv = Ed25519PrivateKey.generate()
    pem = priv.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem))
    return key, f"{key.get_name()} {key.get_base64()} harness"


def make_host_key() -> tuple[bytes, str] | None:
    """A dropbear-format Ed25519 host key and its public line, or None without dropbearkey."""
    tool = shutil.which("dropbearkey")
    if not tool:
        return None
    with tempfile.TemporaryDirectory(prefix="harness-hk-") as d:
        path = Path(d) / "hk"
        subprocess.run([tool, "-t", "ed25519", "-f", str(path)], capture_output=True, check=True)
        pub = subprocess.run(
            [tool, "-y", "-f", str(path)], capture_output=True, text=True, check=True
        ).stdout
        line = next(ln for ln in pub.splitlines() if ln.startswith("ssh-ed25519 "))
        return path.read_bytes(), line


def make_run_keys() -> RunKeys:
    key, pub = make_client_key()
    hk = make_host_key()
    if hk is None:
        log.warning("dropbearkey not found: the guest will make its own host key, unpinned")
        return RunKeys(key, pub, None, None)
    return RunKeys(key, pub, hk[0], hk[1])


def write_run_cpio(keys: RunKeys, out: Path) -> None:
    entries = [
        Entry.dir("/root", 0o700),
        Entry.dir("/root/.ssh", 0o700),
        Entry.file("/root/.ssh/authorized_keys", (keys.client_public_line + "\n").encode(), 0o600),
    ]
    if keys.host_key_blob is not None:
        entries.append(Entry.dir("/etc/dropbear", 0o700))
        entries.append(Entry.file(HOST_KEY_GUEST_PATH, keys.host_key_blob, 0o600))
    with open(out, "wb") as f:
        write_newc(f, entries)


def combined_initrd(base: Path, keys: RunKeys, run_dir: Path) -> Path:
    """Write ``run_dir/initrd.cpio`` = base image followed by this run's archive."""
    run_cpio = run_dir / "run.cpio"
    write_run_cpio(keys, run_cpio)
    out = run_dir / "initrd.cpio"
    with open(out, "wb") as dst:
        for part in (base, run_cpio):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
    run_cpio.unlink()
    return out
