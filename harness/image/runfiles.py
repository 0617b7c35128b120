"""Per-run secrets for the guest: an SSH client key, a host key, and a tiny cpio.

The cached base image is shared by every run, so it must hold no keys. Each run
instead writes a second newc archive carrying ``/etc/dropbear`` host key and
``/root/.ssh/authorized_keys`` and hands QEMU ``base + run`` concatenated as one
``-initrd`` (the kernel unpacks concatenated archives in order; later members
overwrite earlier ones). Because we generate the host key ourselves, the host
side can pin it and need not trust whatever answers on the forwarded port.
"""

from __future__ import annotations

import base64
import io
import logging
import shutil
import struct
import sys
from dataclasses import dataclass
from pathlib import Path


def _import_paramiko_without_invoke() -> None:
    """Import paramiko while ``import invoke`` fails, then let invoke import normally again.

    paramiko.config imports invoke only for ssh_config's ``Match exec``, which the
    harness never parses; invoke is ~40% of paramiko's import time (0.15-0.25 s per
    process measured here), paid by every ``harness`` command. This module is the first
    to import paramiko on every path to a guest (harness.vm.machine imports the image
    before harness.vm.ssh); if it ever is not, the only loss is the saving.
    """
    if "paramiko" in sys.modules or "invoke" in sys.modules:
        return
    sys.modules["invoke"] = None  # type: ignore[assignment]  # makes `import invoke` raise
    try:
        import paramiko  # noqa: F401
    finally:
        del sys.modules["invoke"]


_import_paramiko_without_invoke()

import paramiko  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from harness.image.cpio import Entry, write_newc  # noqa: E402

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


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def dropbear_ed25519_key(seed: bytes) -> tuple[bytes, str]:
    """Dropbear's Ed25519 private key file for ``seed`` (32 bytes) and its public line.

    Dropbear's format (signkey_ed25519.c) is ``string "ssh-ed25519"`` followed by
    ``string seed||public``; the public line is the usual OpenSSH one. Written here
    rather than by two ``dropbearkey`` runs: this is on every boot's critical path.
    """
    priv = Ed25519PrivateKey.from_private_bytes(seed)
    pub = priv.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)
    kind = b"ssh-ed25519"
    blob = _ssh_string(kind) + _ssh_string(seed + pub)
    line = f"ssh-ed25519 {base64.b64encode(_ssh_string(kind) + _ssh_string(pub)).decode()}"
    return blob, line


def make_host_key() -> tuple[bytes, str]:
    """A fresh dropbear-format Ed25519 host key and its public line."""
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return dropbear_ed25519_key(seed)


def make_run_keys() -> RunKeys:
    key, pub = make_client_key()
    blob, line = make_host_key()
    return RunKeys(key, pub, blob, line)


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
